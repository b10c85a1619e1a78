//! `agent new tool NAME` and `agent new agent NAME`: start a tool crate or an agent file.
//!
//! `new tool` writes a folder that builds on its own (its own `[workspace]`):
//!
//! - the tool crate: `Cargo.toml` (agent-tool only), `src/lib.rs` with one `#[tool]` function
//!   and its unit test, a `README.md` and a `.gitignore`;
//! - `agent/`, the user's binary: `use TOOL_CRATE as _; fn main() { agent_cli::main() }`, which
//!   is the `agent` command line with the tool linked in;
//! - `agents/NAME.toml` and its scenarios, which call the tool, so `agent test` has something to
//!   run at once;
//! - `Cargo.lock`, copied from the framework, so the build uses the versions it is tested with.
//!
//! The framework is not published, so the crates depend on it by path: the checkout this
//! program was built from, or `--framework PATH`. `new agent` writes an agent file and its
//! scenarios, using a built-in tool. Nothing is ever overwritten: if any file exists, nothing
//! is written.

mod names;
mod template;

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};

use self::{
    names::{ToolNames, check_agent_name},
    template::render,
};

/// The framework's `Cargo.lock` is about 100 KiB; anything far larger is not one.
const MAX_LOCKFILE_BYTES: u64 = 16 << 20;

/// Arguments of `agent new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// What to create.
    #[command(subcommand)]
    pub what: NewCommand,
}

/// What `agent new` creates.
#[derive(Debug, clap::Subcommand)]
pub enum NewCommand {
    /// A tool crate with one #[tool] function and its test, a binary that is this command line
    /// with the tool linked in, and an agent whose scenario calls the tool.
    Tool(NewToolArgs),
    /// An agent file and a scenarios file that `agent test` passes offline.
    Agent(NewAgentArgs),
}

/// Arguments of `agent new tool`.
#[derive(Debug, clap::Args)]
pub struct NewToolArgs {
    /// The tool's name, as the model calls it (1 to 64 letters, digits, `_` or `-`); in
    /// lowercase it also names the crate and its folder.
    pub name: String,
    /// The folder to create (default: ./NAME in lowercase).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The framework checkout the crates depend on by path (default: the one this program was
    /// built from).
    #[arg(long, value_name = "PATH")]
    pub framework: Option<PathBuf>,
}

/// Arguments of `agent new agent`.
#[derive(Debug, clap::Args)]
pub struct NewAgentArgs {
    /// The agent's name (1 to 64 letters, digits, `_` or `-`); the files are NAME.toml and
    /// NAME.scenarios.toml.
    pub name: String,
    /// The folder to write them in (default: the current one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Creates what was asked for and prints the commands to run next.
pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        NewCommand::Tool(args) => new_tool(args),
        NewCommand::Agent(args) => new_agent(args),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn new_tool(args: NewToolArgs) -> anyhow::Result<()> {
    let names = ToolNames::new(&args.name)?;
    let framework = framework_root(args.framework.as_deref())?;
    let dir = args
        .dir
        .unwrap_or_else(|| PathBuf::from(names.package.as_str()));
    let agent_file = format!("agents/{}.toml", names.package);
    let vars = tool_vars(&names, &framework)?;
    let mut files = vec![
        (
            "Cargo.toml",
            render(include_str!("templates/tool_Cargo.toml"), &vars),
        ),
        (
            "src/lib.rs",
            render(include_str!("templates/tool_lib.rs"), &vars),
        ),
        (
            "README.md",
            render(include_str!("templates/tool_README.md"), &vars),
        ),
        (".gitignore", include_str!("templates/gitignore").to_owned()),
        (
            "agent/Cargo.toml",
            render(include_str!("templates/bin_Cargo.toml"), &vars),
        ),
        (
            "agent/src/main.rs",
            render(include_str!("templates/bin_main.rs"), &vars),
        ),
    ];
    let agent = tool_agent(
        &names,
        &agent_file,
        &format!("cargo run -p {} --", names.bin),
    );
    let scenarios_file = format!("agents/{}.scenarios.toml", names.package);
    files.push((agent_file.as_str(), agent.file));
    files.push((scenarios_file.as_str(), agent.scenarios));
    let lock = framework.join("Cargo.lock");
    if lock.exists() {
        let text = agent_core::fs_limits::read_text(
            &lock,
            MAX_LOCKFILE_BYTES,
            "the framework's Cargo.lock",
        )?;
        files.push(("Cargo.lock", text));
    }
    write_new(&dir, &files)?;

    crate::output::outln!(
        "created {}: the tool crate `{}` with the tool `{}`, the binary `{}` (agent/: this \
         command line with the tool in it), and the agent {agent_file}, whose scenario calls it",
        dir.display(),
        names.package,
        names.tool,
        names.bin,
    );
    let run = format!("cargo run -p {} --", names.bin);
    print_next(&[
        (format!("cd {}", dir.display()), String::new()),
        ("cargo test".to_owned(), "the tool's unit test".to_owned()),
        (
            format!("{run} tools"),
            format!("`{}` beside the built-in tools", names.tool),
        ),
        (
            format!("{run} test {agent_file}"),
            "its scenario, offline: the tool runs for real".to_owned(),
        ),
    ]);
    Ok(())
}

fn new_agent(args: NewAgentArgs) -> anyhow::Result<()> {
    check_agent_name(&args.name)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let file = format!("{}.toml", args.name);
    let scenarios = format!("{}.scenarios.toml", args.name);
    let program = program_name();
    let agent = calculator_agent(&args.name, &file, &program);
    write_new(
        &dir,
        &[
            (file.as_str(), agent.file),
            (scenarios.as_str(), agent.scenarios),
        ],
    )?;
    let path = dir.join(&file);
    crate::output::outln!(
        "created {} and {}",
        path.display(),
        dir.join(&scenarios).display()
    );
    print_next(&[
        (
            format!("{program} test {}", path.display()),
            "its scenario, offline".to_owned(),
        ),
        (
            format!("{program} run {} --offline", path.display()),
            "the conversation it plays".to_owned(),
        ),
        (
            format!("{program} run {}", path.display()),
            "talk to it (needs OPENAI_API_KEY)".to_owned(),
        ),
    ]);
    Ok(())
}

/// An agent file and its scenarios.
struct AgentFiles {
    file: String,
    scenarios: String,
}

/// The agent `new tool` writes: its scenario calls the new tool. `program` is how its comments
/// say to run the user's binary.
fn tool_agent(names: &ToolNames, file: &str, program: &str) -> AgentFiles {
    agent_files(&[
        ("agent", names.package.as_str()),
        ("file", file),
        ("program", program),
        (
            "description",
            "Greets the user by name with the tool made by `agent new tool`.",
        ),
        (
            "instructions",
            &format!(
                "You are a friendly assistant. When the user tells you their name, greet them with the `{}` tool and repeat its greeting.",
                names.tool
            ),
        ),
        ("tools", &format!("\"{}\"", names.tool)),
        ("scenario", "greets by name"),
        ("user", "Hi, I'm Ada."),
        ("call", names.tool.as_str()),
        ("arguments", "{ name = \"Ada\" }"),
        ("reply", "Hello, Ada! Nice to meet you."),
        ("output", "Hello, Ada!"),
    ])
}

/// The agent `new agent` writes: built-in tools only, so it runs with any `agent` binary.
fn calculator_agent(name: &str, file: &str, program: &str) -> AgentFiles {
    agent_files(&[
        ("agent", name),
        ("file", file),
        ("program", program),
        (
            "description",
            "Answers questions, and does arithmetic with the `calculate` tool.",
        ),
        (
            "instructions",
            "You are a helpful assistant. Use the `calculate` tool for any arithmetic instead of working it out yourself, and say the result.",
        ),
        ("tools", "\"calculate\", \"current_time\""),
        ("scenario", "arithmetic"),
        ("user", "What is 6 times 7?"),
        ("call", "calculate"),
        ("arguments", "{ expression = \"6 * 7\" }"),
        ("reply", "6 times 7 is 42."),
        ("output", "42"),
    ])
}

fn agent_files(vars: &[(&str, &str)]) -> AgentFiles {
    AgentFiles {
        file: render(include_str!("templates/agent.toml"), vars),
        scenarios: render(include_str!("templates/agent.scenarios.toml"), vars),
    }
}

/// The placeholders of the tool crate's templates.
fn tool_vars<'a>(names: &'a ToolNames, framework: &Path) -> anyhow::Result<Vec<(&'a str, String)>> {
    let path_of = |crate_dir: &str| -> anyhow::Result<String> {
        let path = framework.join(crate_dir);
        let text = path.to_str().with_context(|| {
            format!(
                "the framework's path {} is not UTF-8, which Cargo.toml cannot hold",
                path.display()
            )
        })?;
        Ok(toml::Value::String(text.to_owned()).to_string())
    };
    Ok(vec![
        ("tool", names.tool.clone()),
        ("package", names.package.clone()),
        ("lib", names.lib.clone()),
        ("function", names.function.clone()),
        ("tool_attribute", names.attribute()),
        ("bin", names.bin.clone()),
        ("agent", names.package.clone()),
        ("agent_tool_path", path_of("agent-tool")?),
        ("agent_cli_path", path_of("agent-cli")?),
        ("framework", framework.display().to_string()),
    ])
}

/// The framework checkout: `--framework`, else the one this program was built from. It must
/// hold agent-tool and agent-cli.
fn framework_root(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (root, hint) = match given {
        Some(path) => (path.to_owned(), "check the path given to --framework"),
        None => (
            // agent-cli's folder when this program was compiled; its parent is the checkout.
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(Path::to_owned)
                .unwrap_or_default(),
            "this program was built from a checkout that has since moved; pass --framework PATH \
             (the folder with agent-tool/ and agent-cli/)",
        ),
    };
    for crate_dir in ["agent-tool", "agent-cli"] {
        if !root.join(crate_dir).join("Cargo.toml").is_file() {
            bail!(
                "{} is not a checkout of the framework: it has no {crate_dir}/Cargo.toml; {hint}",
                root.display()
            );
        }
    }
    root.canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))
}

/// Writes `files` (paths relative to `dir`), refusing to overwrite anything: when one exists,
/// nothing is written and the error lists them all.
fn write_new<S: AsRef<str>>(dir: &Path, files: &[(&str, S)]) -> anyhow::Result<()> {
    let existing: Vec<String> = files
        .iter()
        .map(|(path, _)| dir.join(path))
        .filter(|path| path.symlink_metadata().is_ok())
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() {
        bail!(
            "refusing to overwrite {}; pick another NAME or --dir, or move them away",
            existing.join(", ")
        );
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the folder {}", parent.display()))?;
        }
        // `create_new`: a file that appeared since the check above is not overwritten either.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| file.write_all(text.as_ref().as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Prints the commands to run next, each with what it does, the comments aligned.
fn print_next(steps: &[(String, String)]) {
    let width = steps
        .iter()
        .map(|(command, _)| command.len())
        .max()
        .unwrap_or(0);
    crate::output::outln!("next:");
    for (command, what) in steps {
        if what.is_empty() {
            crate::output::outln!("  {command}");
        } else {
            crate::output::outln!("  {command:width$}   # {what}");
        }
    }
}

/// The name this program was started as (`agent`, or a user's binary), for the hints.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_stem)
        .and_then(|name| name.to_str())
        .unwrap_or("agent")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framework() -> PathBuf {
        framework_root(None).unwrap()
    }

    #[test]
    fn the_tool_crate_is_complete() {
        let names = ToolNames::new("Hello-Tool").unwrap();
        let vars = tool_vars(&names, &framework()).unwrap();
        let lib = render(include_str!("templates/tool_lib.rs"), &vars);
        assert!(
            lib.contains("#[tool(name = \"Hello-Tool\")]\npub fn hello_tool("),
            "{lib}"
        );
        let manifest = render(include_str!("templates/tool_Cargo.toml"), &vars);
        let manifest: toml::Table = toml::from_str(&manifest).unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("hello-tool"));
        let path = manifest["dependencies"]["agent-tool"]["path"]
            .as_str()
            .unwrap();
        assert!(Path::new(path).join("Cargo.toml").is_file(), "{path}");
        let bin = render(include_str!("templates/bin_Cargo.toml"), &vars);
        let bin: toml::Table = toml::from_str(&bin).unwrap();
        assert_eq!(bin["package"]["name"].as_str(), Some("hello-tool-agent"));
        assert!(bin["dependencies"]["hello-tool"].is_table());
        let main = render(include_str!("templates/bin_main.rs"), &vars);
        assert!(main.contains("use hello_tool as _;"), "{main}");
    }

    #[test]
    fn agents_are_valid_toml_and_call_their_tool() {
        for files in [
            tool_agent(&ToolNames::new("greet").unwrap(), "agents/greet.toml", "x"),
            calculator_agent("helper", "helper.toml", "agent"),
        ] {
            let agent: toml::Table = toml::from_str(&files.file).unwrap();
            let scenarios: toml::Table = toml::from_str(&files.scenarios).unwrap();
            let tool = agent["tools"][0].as_str().unwrap();
            let turn = &scenarios["scenario"][0]["turn"][0];
            assert_eq!(turn["model"][0]["calls"][0]["name"].as_str(), Some(tool));
            assert_eq!(turn["expect"][0]["tool"].as_str(), Some(tool));
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let names = ToolNames::new("greet").unwrap();
        let vars = tool_vars(&names, &framework()).unwrap();
        let tool_templates = [
            include_str!("templates/tool_Cargo.toml"),
            include_str!("templates/tool_lib.rs"),
            include_str!("templates/tool_README.md"),
            include_str!("templates/bin_Cargo.toml"),
            include_str!("templates/bin_main.rs"),
        ];
        let mut texts: Vec<String> = tool_templates
            .iter()
            .map(|template| render(template, &vars))
            .collect();
        for files in [
            tool_agent(&names, "agents/greet.toml", "x"),
            calculator_agent("helper", "helper.toml", "agent"),
        ] {
            texts.push(files.file);
            texts.push(files.scenarios);
        }
        for text in texts {
            assert!(!text.contains("{{"), "{text}");
        }
    }

    #[test]
    fn nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "mine").unwrap();
        let err = write_new(dir.path(), &[("a/a.txt", "new"), ("b.txt", "new")]).unwrap_err();
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        assert!(err.to_string().contains("b.txt"), "{err}");
        assert!(!dir.path().join("a").exists(), "nothing is written");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.txt")).unwrap(),
            "mine"
        );
        write_new(dir.path(), &[("a/a.txt", "new")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/a.txt")).unwrap(),
            "new"
        );
    }

    #[test]
    fn a_folder_that_is_not_the_framework_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = framework_root(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("agent-tool/Cargo.toml"), "{err}");
        assert!(err.to_string().contains("--framework"), "{err}");
    }
}
