//! How every phone call ends, whatever the transport: its session closes (the costs it
//! reports on the way out are charged), then the outcome goes to the metrics and, when the
//! call is stored, to the history. Both transports end calls this way, so a call's last cost
//! and its outcome are never recorded differently for Twilio and for SIP.

use std::time::{Duration, SystemTime};

use agent_core::session::{Session, SessionEvent};

use crate::{call_history::StoredCall, metrics::Outcome, spend::utc_day, state::AppState};

/// How long a call's session may take to close once the call is over.
pub const SESSION_CLOSE: Duration = Duration::from_secs(5);

/// Charges a cost report's amount to the server's metrics and to the route's spend for today
/// (the daily cap per agent counts it).
pub fn charge(state: &AppState, route: usize, usd: Option<f64>) {
    if let Some(usd) = usd {
        state.metrics.cost(usd);
        state.spend.add(route, usd, utc_day(SystemTime::now()));
    }
}

/// Closes `session` within [`SESSION_CLOSE`], charging what it reports on the way out, then
/// records `outcome`. `call` names the call in the log.
pub async fn wind_down(
    state: &AppState,
    route: usize,
    session: &mut Session,
    stored: Option<&StoredCall>,
    outcome: Outcome,
    call: &str,
) {
    let closing = async {
        let _ = session.handle.close().await;
        while let Some(event) = session.events.recv().await {
            match event {
                SessionEvent::Cost(report) => charge(state, route, report.cost_usd),
                SessionEvent::Closed { .. } => break,
                _ => {}
            }
        }
    };
    if tokio::time::timeout(SESSION_CLOSE, closing).await.is_err() {
        tracing::warn!(call, "the session did not close within {SESSION_CLOSE:?}");
    }
    state.metrics.call_ended(outcome);
    if let (Some(history), Some(stored)) = (&state.history, stored) {
        history.finish_call(stored, outcome.as_str()).await;
    }
}
