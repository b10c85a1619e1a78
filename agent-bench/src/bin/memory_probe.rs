//! `agent-bench-memory`: the measuring process of agent-bench's §6 (see `memory.rs`). Its
//! global allocator counts live heap bytes, which the main bench binary must not pay for.
//!
//! ```sh
//! agent-bench-memory WORKSPACE ws://127.0.0.1:PORT/v1/realtime 500,2000,4000 history|no-history
//! ```
//!
//! Plays the turns scenario with the library client and prints one JSON line: at each
//! checkpoint (turns played), the live heap bytes and the RSS.

// Modules shared with the main binary, which uses all of their items; this one uses a part.
#[allow(dead_code)]
#[path = "../common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../library_client.rs"]
mod library_client;
#[allow(dead_code)]
#[path = "../turns.rs"]
mod turns;

use std::{path::PathBuf, time::Duration};

use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes: allocated − freed. `stats_alloc` already adds a reallocation's growth to
/// `bytes_allocated` (and its shrinking to `bytes_deallocated`); `bytes_reallocated` is the
/// same change again, so it must not be added.
fn live_bytes(region: &Region<'_, std::alloc::System>) -> i64 {
    let s = region.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn main() -> anyhow::Result<()> {
    let region = Region::new(GLOBAL);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workspace, url, checkpoints, history] = args.as_slice() else {
        anyhow::bail!("usage: agent-bench-memory WORKSPACE URL T1,T2,... history|no-history");
    };
    let checkpoints: Vec<usize> = checkpoints
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let scenario = turns::Turns::load(&PathBuf::from(workspace))?;
    let agent = library_client::agent(&scenario)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut session = if history == "history" {
            common::start_with_history(&agent, url).await?
        } else {
            common::start(&agent, url).await?
        };
        let mut seen = library_client::Seen::default();
        let mut played = 0;
        let mut points = Vec::new();
        for &at in &checkpoints {
            while played < at {
                library_client::play_turn(&mut session, &scenario.user_text, &mut seen).await?;
                played += 1;
            }
            // Let the history writer finish the queued items before counting.
            tokio::time::sleep(Duration::from_millis(300)).await;
            points.push(json!({
                "turns": played,
                "live": live_bytes(&region),
                "rss": common::rss_bytes(),
            }));
        }
        let _ = session.handle.close().await;
        println!("{}", json!({ "checkpoints": points }));
        anyhow::Ok(())
    })
}
