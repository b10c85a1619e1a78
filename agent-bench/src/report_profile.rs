//! BENCHMARKS.md §6 (memory per turn), §7 (binary size), §8 (callgrind) and their target rows.

use std::fmt::Write as _;

use crate::{
    callgrind_parse::BUCKETS,
    report::{Report, mark},
};

/// At most this many bytes of session growth per turn.
const BYTES_PER_TURN: f64 = 1024.0;
/// The shipped (`dist`) binary at most this many bytes.
const BINARY_BYTES: u64 = 25 * 1000 * 1000;

impl Report {
    /// The memory target row (history on, as `agent run` keeps by default).
    pub(crate) fn memory_target(&self, md: &mut String) {
        let Some(growth) = &self.memory else {
            return;
        };
        for g in growth {
            let per = g.per_turn();
            let _ = writeln!(
                md,
                "| session memory ≤ 1 KB per turn, {} | {:.0} B per turn (live heap) | {} |",
                if g.history {
                    "history on"
                } else {
                    "no history"
                },
                per,
                if per <= BYTES_PER_TURN {
                    "met".to_owned()
                } else {
                    format!("**not met**: {:.1}× the target", per / BYTES_PER_TURN)
                }
            );
        }
    }

    /// The binary-size target row.
    pub(crate) fn size_target(&self, md: &mut String) {
        if let Some(size) = &self.size {
            let _ = writeln!(
                md,
                "| shipped (`dist`) `agent` binary ≤ 25 MB | {:.1} MB | {} |",
                size.bytes as f64 / 1e6,
                if size.bytes <= BINARY_BYTES {
                    mark(true).to_owned()
                } else {
                    format!(
                        "**not met** by {:.1} MB",
                        (size.bytes - BINARY_BYTES) as f64 / 1e6
                    )
                }
            );
        }
    }

    /// §6.
    pub(crate) fn memory_section(&self, md: &mut String) {
        let Some(growth) = &self.memory else {
            return;
        };
        let _ = writeln!(md, "## 6. Session memory per turn\n");
        let _ = writeln!(
            md,
            "One library session (the turns agent, its built-in tool) plays the turns scenario \
             in `agent-bench-memory`, a probe whose global allocator counts live heap bytes \
             (allocated − freed through Rust's allocator, `stats_alloc`); the server runs in \
             the bench process and is not counted. Live bytes are read at each checkpoint once \
             the session is idle and the history writer has caught up (300 ms); growth per turn \
             = the difference between the last two checkpoints / the turns between them, so \
             buffers that reached their size early do not count. SQLite's page cache uses C \
             `malloc` (bounded by its cache size) and is not in the count; RSS is shown beside \
             it.\n"
        );
        let _ = writeln!(
            md,
            "| history | checkpoints (turns: live heap, RSS) | live heap per turn | RSS per turn |\n| --- | --- | ---: | ---: |"
        );
        for g in growth {
            let points: Vec<String> = g
                .checkpoints
                .iter()
                .map(|(t, live, rss)| {
                    format!(
                        "{t}: {:.2} MB, {:.1} MB",
                        *live as f64 / 1e6,
                        *rss as f64 / 1e6
                    )
                })
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} B | {:.0} B |",
                if g.history {
                    "on (SQLite store)"
                } else {
                    "off"
                },
                points.join("; "),
                g.per_turn(),
                g.rss_per_turn()
            );
        }
        let _ = writeln!(md);
    }

    /// §7.
    pub(crate) fn size_section(&self, md: &mut String) {
        let Some(size) = &self.size else {
            return;
        };
        let _ = writeln!(md, "## 7. Binary size\n");
        let _ = writeln!(
            md,
            "The `agent` binary as it ships (`cargo build --profile dist -p agent-cli`: whole-program \
             LTO in one codegen unit, no debug info, symbols stripped), built by the bench from this checkout: **{:.1} MB** ({} bytes). \
             {}Re-measure when the server, WebRTC and PostgreSQL code arrive.\n",
            size.bytes as f64 / 1e6,
            size.bytes,
            size.profiling_bytes.map_or(String::new(), |p| format!(
                "The `profiling` build of the same code (line tables and symbols) is {:.1} MB. ",
                p as f64 / 1e6
            ))
        );
    }

    /// §8.
    pub(crate) fn callgrind_section(&self, md: &mut String) {
        let Some(result) = &self.callgrind else {
            return;
        };
        let _ = writeln!(md, "## 8. Where the instructions go: callgrind\n");
        let c = match result {
            Ok(c) => c,
            Err(why) => {
                let _ = writeln!(md, "Skipped: {why}.\n");
                return;
            }
        };
        let _ = writeln!(
            md,
            "`agent run` (the `profiling` build: the shipped `dist` code with line tables and symbols) under \
             `valgrind --tool=callgrind` ({}), playing {} turns and then 1 turn of the turns \
             scenario against a scripted server in the bench process; per turn = (N turns − 1 \
             turn) / (N − 1), so start-up drops out. Instruction counts repeat on a noisy \
             machine, but they are user-space only: syscalls, loopback TCP and SQLite's fsyncs \
             cost kernel time that is not here. **Self** = instructions in the bucket's own \
             functions (the self columns add up to the total); **inclusive** = calls entering the \
             bucket from outside it, callees included (buckets nest, so inclusive columns \
             overlap). Buckets by function path: `agent-bench/src/callgrind_parse.rs`.\n",
            c.valgrind, c.turns
        );
        let (total, selfs, incl) = c.per_turn(&c.defaults);
        let (t_total, t_selfs, t_incl) = c.per_turn(&c.trace);
        let _ = writeln!(
            md,
            "| bucket | self per turn (defaults) | share | inclusive per turn (defaults) | self per turn (`--trace`) | inclusive per turn (`--trace`) |\n| --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for (i, name) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {name} | {:.0} | {:.1}% | {:.0} | {:.0} | {:.0} |",
                selfs[i],
                selfs[i] / total.max(1.0) * 100.0,
                incl[i],
                t_selfs[i],
                t_incl[i]
            );
        }
        let _ = writeln!(
            md,
            "| **total per turn** | **{total:.0}** | 100% | | **{t_total:.0}** | |\n"
        );
        let others: Vec<String> = c
            .top_others(8)
            .into_iter()
            .map(|(name, per)| format!("`{}` {per:.0}", name.replace('`', "'")))
            .collect();
        let _ = writeln!(
            md,
            "The largest functions in \"other\" (self instructions per turn, defaults): {}.\n",
            others.join(", ")
        );
        let _ = writeln!(
            md,
            "Start-up (the 1-turn run, whole program): {:.1} M instructions with the defaults, \
             {:.1} M with `--trace`.\n",
            c.defaults.1.total as f64 / 1e6,
            c.trace.1.total as f64 / 1e6
        );
    }
}
