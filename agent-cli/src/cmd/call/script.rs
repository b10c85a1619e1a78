//! What the simulated call plays: the agent's scenario made into a phone call (the agent
//! speaks first), and the caller's side of it (each user turn spoken as a tone in real time,
//! or pressed on the keypad).

use std::time::Duration;

use agent_core::agent::PhoneSpec;
use agent_testkit::{ModelStep, Scenario, Turn, twilio::CallerStep};

/// How long the caller waits for one answer of the agent, and for the call to connect.
pub const STEP_DEADLINE: Duration = Duration::from_secs(30);
/// Silence after the agent's audio that ends its answer.
const ANSWER_QUIET: Duration = Duration::from_millis(1_000);
/// How long the caller speaks per character of the turn's text, within [`SPEECH_MIN`] and
/// [`SPEECH_MAX`]: a tone the length of the sentence.
const SPEECH_PER_CHAR: Duration = Duration::from_millis(40);
const SPEECH_MIN: Duration = Duration::from_millis(600);
const SPEECH_MAX: Duration = Duration::from_millis(2_500);

/// What the caller does in one user turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerTurn {
    /// Says this text (a tone on the line; the scripted model hears the turn's text).
    Speaks(String),
    /// Presses this key (the turn's text is what the server tells the model about it).
    Presses(char),
}

/// The scenario as a phone call: a call starts with the agent speaking, so a scenario that
/// starts with the user gets a first turn where the model greets, with the `[phone]`
/// greeting when the agent file has one.
pub fn phone_scenario(scenario: &Scenario, phone: &PhoneSpec, agent_name: &str) -> Scenario {
    if scenario.turns.first().is_some_and(|t| t.user.is_none()) {
        return scenario.clone();
    }
    let greeting = phone
        .greeting
        .clone()
        .unwrap_or_else(|| format!("Hello, you are speaking with {agent_name}. How can I help?"));
    let mut phone_call = scenario.clone();
    phone_call
        .turns
        .insert(0, Turn::model_first().model(ModelStep::say(greeting)));
    phone_call
}

/// The caller's turns, in order: a turn whose text is how the server reports a key press
/// ("The caller pressed 5 on the keypad.", `[phone.dtmf] mode = "each"`) is pressed, any
/// other is spoken.
pub fn caller_turns(scenario: &Scenario) -> Vec<CallerTurn> {
    scenario
        .turns
        .iter()
        .filter_map(|t| t.user.as_deref())
        .map(|text| match keypad_digit(text) {
            Some(key) => CallerTurn::Presses(key),
            None => CallerTurn::Speaks(text.to_owned()),
        })
        .collect()
}

fn keypad_digit(text: &str) -> Option<char> {
    let key = text
        .strip_prefix("The caller pressed ")?
        .strip_suffix(" on the keypad.")?;
    let mut chars = key.chars();
    let digit = chars.next()?;
    (chars.next().is_none() && (digit.is_ascii_digit() || digit == '*' || digit == '#'))
        .then_some(digit)
}

/// The Twilio caller's script: hear the greeting, then for each turn speak (or press) and hear
/// the answer, then hang up.
pub fn twilio_script(turns: &[CallerTurn]) -> Vec<CallerStep> {
    let answer = CallerStep::WaitAnswer {
        quiet: ANSWER_QUIET,
        within: STEP_DEADLINE,
    };
    let mut script = vec![answer.clone()];
    for turn in turns {
        script.push(match turn {
            CallerTurn::Speaks(text) => CallerStep::Speak(speech_length(text)),
            CallerTurn::Presses(key) => CallerStep::Dtmf(*key),
        });
        script.push(answer.clone());
    }
    script.push(CallerStep::HangUp);
    script
}

/// How many responses each turn of `scenario` has (one per model step), to know when the
/// answer to a turn is over.
pub fn responses_per_turn(scenario: &Scenario) -> Vec<usize> {
    scenario.turns.iter().map(|t| t.model.len()).collect()
}

/// How long the caller's tone for `text` lasts.
fn speech_length(text: &str) -> Duration {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    (SPEECH_PER_CHAR * chars).clamp(SPEECH_MIN, SPEECH_MAX)
}

/// The longest the whole call may take: a connection and an answer per turn, plus what the
/// caller says.
pub fn call_deadline(turns: &[CallerTurn]) -> Duration {
    let steps = u32::try_from(turns.len() + 2).unwrap_or(u32::MAX);
    STEP_DEADLINE * steps + SPEECH_MAX * steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn support() -> Scenario {
        Scenario::new("s")
            .turn(Turn::user("Where is my order?").model(ModelStep::say("It shipped.")))
            .turn(Turn::user("The caller pressed 5 on the keypad.").model(ModelStep::say("Five.")))
    }

    #[test]
    fn a_call_starts_with_the_greeting_of_the_phone_table() {
        let phone = PhoneSpec {
            greeting: Some("Thanks for calling.".into()),
            ..PhoneSpec::default()
        };
        let call = phone_scenario(&support(), &phone, "support");
        assert_eq!(call.turns.len(), 3);
        assert_eq!(call.turns[0].user, None);
        assert_eq!(
            call.turns[0].model[0].say.as_deref(),
            Some("Thanks for calling.")
        );
        // A scenario that already starts with the model is played as it is.
        assert_eq!(phone_scenario(&call, &PhoneSpec::default(), "x"), call);
        let generic = phone_scenario(&support(), &PhoneSpec::default(), "support");
        assert!(
            generic.turns[0].model[0]
                .say
                .as_deref()
                .unwrap()
                .contains("support")
        );
    }

    #[test]
    fn keypad_turns_are_pressed_and_the_rest_spoken() {
        let turns = caller_turns(&support());
        assert_eq!(
            turns,
            [
                CallerTurn::Speaks("Where is my order?".into()),
                CallerTurn::Presses('5')
            ]
        );
        let script = twilio_script(&turns);
        assert_eq!(script.len(), 6);
        assert!(matches!(script[0], CallerStep::WaitAnswer { .. }));
        assert_eq!(script[1], CallerStep::Speak(Duration::from_millis(720)));
        assert_eq!(script[3], CallerStep::Dtmf('5'));
        assert_eq!(script[5], CallerStep::HangUp);
        assert_eq!(keypad_digit("The caller pressed 55 on the keypad."), None);
        assert_eq!(speech_length("hi"), SPEECH_MIN);
        assert_eq!(speech_length(&"x".repeat(500)), SPEECH_MAX);
    }
}
