//! Replays every committed fuzz input as an ordinary test: each target's corpus
//! (`fuzz/corpus/<target>/`) and every crash, timeout or leak file cargo-fuzz saved
//! (`fuzz/artifacts/<target>/`). A crash found by a fuzzing session is committed as its artifact
//! file together with the fix, and from then on CI proves it stays fixed, without nightly or a
//! sanitizer build.

use std::{
    fs,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
};

use fuzz_targets::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly inside `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file in `dir`; returns how many ran and the failures.
fn replay(target: Target, dir: &Path) -> (usize, Vec<String>) {
    let files = inputs(dir);
    let mut failures = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    (files.len(), failures)
}

#[test]
fn every_corpus_entry_and_crash_file_replays_cleanly() {
    let root = fuzz_dir();
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let (corpus, mut corpus_failures) = replay(*target, &root.join("corpus").join(name));
        assert!(
            corpus > 0,
            "fuzz/corpus/{name}/ is empty: every target keeps a seed corpus"
        );
        let (_, mut artifact_failures) = replay(*target, &root.join("artifacts").join(name));
        failures.append(&mut corpus_failures);
        failures.append(&mut artifact_failures);
    }
    assert!(
        failures.is_empty(),
        "{} fuzz inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] for `{name}`"
        );
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text =
            fs::read_to_string(&source).unwrap_or_else(|err| panic!("{}: {err}", source.display()));
        assert!(
            text.contains(&format!("fuzz_targets::{name}(")),
            "{} does not call fuzz_targets::{name}",
            source.display()
        );
    }
}
