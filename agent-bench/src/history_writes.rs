//! (11, second part) History write throughput: the same workload through
//! [`HistoryWriter`] on PostgreSQL and on SQLite, as `agent serve` writes its calls.
//!
//! Two workloads, each run on both stores (a fresh schema, a fresh file):
//! - **calls**: many leased conversations at once (one per call), each writing tool turns as
//!   fast as the writer lets it: per turn, the tool call's "started" record (awaited, as a
//!   session awaits it before the tool runs), then the turn's four items (the user's words,
//!   the call, its output, the answer) and the call's "finished" record, fire-and-forget
//!   through the session's sink. Whatever is queued shares a group commit; the clock stops
//!   when a final `flush` says everything is committed.
//! - **one at a time**: one conversation whose every append is awaited before the next is
//!   queued, so no two writes share a commit: the cost of one commit, round trip included.
//!
//! SQLite runs with the defaults `agent serve` uses (write-ahead log, `synchronous = FULL`,
//! the writer syncing the log at most every 100 ms); PostgreSQL with the server's own settings
//! (reported beside the numbers).

use std::time::{Duration, Instant};

use agent_core::{
    history::{ConversationWriter, HistoryStore, HistoryWriter},
    protocol::Item,
    session::HistorySink,
};

/// What one workload wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Items appended.
    pub appends: u64,
    /// Every write: appends, call records.
    pub writes: u64,
    /// Wall seconds from the first write queued to the flush answered.
    pub secs: f64,
}

impl Measured {
    /// Appends per second.
    pub fn appends_per_sec(&self) -> f64 {
        self.appends as f64 / self.secs.max(1e-9)
    }

    /// Writes per second.
    pub fn writes_per_sec(&self) -> f64 {
        self.writes as f64 / self.secs.max(1e-9)
    }
}

/// Both workloads on one store.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreRun {
    /// Many conversations at once.
    pub calls: Measured,
    /// One conversation, every append awaited.
    pub one_at_a_time: Measured,
}

/// The workloads' sizes.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Conversations writing at once.
    pub conversations: usize,
    /// Tool turns each writes.
    pub turns: usize,
    /// Appends of the one-at-a-time workload.
    pub sequential: usize,
}

/// Items appended per tool turn (user, call, output, answer).
pub const APPENDS_PER_TURN: u64 = 4;
/// Writes per tool turn: the items and the call's two records.
pub const WRITES_PER_TURN: u64 = 6;

/// Runs both workloads on the store at `location` (a `postgres://` URL or a file path).
pub fn run(location: &str, workload: Workload) -> anyhow::Result<StoreRun> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hist-bench")
        .enable_all()
        .build()?;
    let writer = HistoryWriter::spawn(HistoryStore::open(location)?)?;
    let calls = runtime.block_on(concurrent_turns(&writer, workload))?;
    let one_at_a_time = runtime.block_on(sequential(&writer, workload.sequential))?;
    Ok(StoreRun {
        calls,
        one_at_a_time,
    })
}

const HOLDER: &str = "agent-bench";

/// A leased conversation, as `agent serve` makes one per call.
async fn leased(writer: &HistoryWriter) -> anyhow::Result<ConversationWriter> {
    let id = writer.create_conversation("shop", "gpt-realtime").await?;
    writer
        .acquire_lease(&id, HOLDER, Duration::from_secs(3600))
        .await?;
    Ok(writer.leased_conversation(id, HOLDER))
}

async fn concurrent_turns(writer: &HistoryWriter, w: Workload) -> anyhow::Result<Measured> {
    let mut sinks = Vec::with_capacity(w.conversations);
    for _ in 0..w.conversations {
        sinks.push(leased(writer).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = sinks
        .into_iter()
        .map(|sink| {
            let turns = w.turns;
            tokio::spawn(async move {
                for turn in 0..turns {
                    one_turn(&sink, turn).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    writer.flush().await?;
    let turns = (w.conversations * w.turns) as u64;
    Ok(Measured {
        appends: turns * APPENDS_PER_TURN,
        writes: turns * WRITES_PER_TURN,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// One tool turn as a session writes it.
async fn one_turn(sink: &ConversationWriter, turn: usize) -> anyhow::Result<()> {
    let call_id = format!("call_{turn}");
    let arguments = r#"{"item":"lamp"}"#;
    let output = r#"{"status":200,"body":{"recorded":true}}"#;
    HistorySink::call_started(sink, &call_id, "record_order", arguments)
        .await
        .map_err(|e| anyhow::anyhow!("call record: {e}"))?;
    HistorySink::append(
        sink,
        &format!("u{turn}"),
        &Item::user_text(format!("Order number {turn}, please.")),
    );
    HistorySink::append(
        sink,
        &format!("c{turn}"),
        &Item::function_call(&call_id, "record_order", arguments),
    );
    HistorySink::append(
        sink,
        &format!("o{turn}"),
        &Item::function_call_output(&call_id, output),
    );
    HistorySink::call_finished(sink, &call_id, output);
    HistorySink::append(
        sink,
        &format!("a{turn}"),
        &Item::assistant_text(format!("Order {turn} is placed.")),
    );
    Ok(())
}

async fn sequential(writer: &HistoryWriter, appends: usize) -> anyhow::Result<Measured> {
    let sink = leased(writer).await?;
    let started = Instant::now();
    for n in 0..appends {
        sink.append(
            &format!("s{n}"),
            &Item::assistant_text(format!("Line {n} of a long answer.")),
        )
        .await?;
    }
    Ok(Measured {
        appends: appends as u64,
        writes: appends as u64,
        secs: started.elapsed().as_secs_f64(),
    })
}
