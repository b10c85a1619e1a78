//! Input from the terminal that never holds the process: stdin lines read on their own thread,
//! and Ctrl-C as a stream.
//!
//! Tokio reads stdin on its blocking pool, and a runtime waits for its blocking tasks when it
//! shuts down: a run that ended (a final close, Ctrl-C) would wait for one more line of input
//! before the process could exit. A plain thread that nobody waits for has no such hold; the
//! process exits under it.

use tokio::sync::mpsc;

/// Lines of stdin, read on a dedicated thread. The channel closes at the end of the input.
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    let spawned = std::thread::Builder::new()
        .name("agent-stdin".to_owned())
        .spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    if let Err(err) = spawned {
        tracing::error!("cannot read the terminal: {err}");
    }
    rx
}

/// The exit code of a run the user interrupted (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// Ctrl-C presses. The first arrives on the returned channel, so the run can close the session
/// and print its summary; a second one exits at once, whatever the run is waiting for.
///
/// A closed stdout arrives on the same channel (see `output::on_closed_stdout`): the run ends as
/// on Ctrl-C, writing its history first, and exits with 141 instead of 130.
pub fn interrupts() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    crate::output::on_closed_stdout(tx.clone());
    tokio::spawn(async move {
        let mut presses = 0u32;
        while tokio::signal::ctrl_c().await.is_ok() {
            presses += 1;
            if presses == 1 {
                let _ = tx.try_send(());
            } else {
                crate::output::errln!("\ninterrupted again: exiting now");
                std::process::exit(i32::from(INTERRUPTED));
            }
        }
    });
    rx
}
