//! Built-in Rust guardrails, for `type = "rust"` entries under `[guardrails]`.
//!
//! - `payment_card_numbers`: trips on a payment card number (13 to 19 digits, spaces or dashes
//!   between them allowed, that pass the Luhn check). A pattern alone would stop order numbers
//!   and phone numbers too; the checksum keeps it to what could really be a card.

use agent_tool::{Guardrail, GuardrailStage, register_guardrail};

link_anchor!();

/// The guardrail's name in agent files.
pub const PAYMENT_CARD_NUMBERS: &str = "payment_card_numbers";

/// Card numbers have 13 to 19 digits.
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;

/// Digits of one run kept, at most: a longer run is not a card number anyway.
const MAX_RUN: usize = 64;

/// Stops payment card numbers, typed, spoken or said by the agent.
#[derive(Debug, Default)]
pub struct PaymentCardNumbers;

impl Guardrail for PaymentCardNumbers {
    fn name(&self) -> &str {
        PAYMENT_CARD_NUMBERS
    }

    fn check(&self, text: &str, _stage: GuardrailStage) -> Result<(), String> {
        if digit_runs(text).any(|run| holds_card_number(&run)) {
            return Err("it contains a payment card number".into());
        }
        Ok(())
    }
}

register_guardrail!(PaymentCardNumbers);

/// Runs of digits, where a single space or dash may separate digits ("4111 1111-1111 1111").
fn digit_runs(text: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let mut run = Vec::new();
            while i < bytes.len() {
                let b = bytes[i];
                if b.is_ascii_digit() {
                    if run.len() < MAX_RUN {
                        run.push(b - b'0');
                    }
                    i += 1;
                } else if matches!(b, b' ' | b'-')
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                {
                    i += 1;
                } else {
                    break;
                }
            }
            return Some(run);
        }
        None
    })
}

/// Whether `run` is a card number: 13 to 19 digits that pass the Luhn check. A whole run,
/// not a stretch of a longer one: windows over long runs would pass the checksum by chance.
fn holds_card_number(run: &[u8]) -> bool {
    CARD_DIGITS.contains(&run.len()) && luhn(run)
}

/// The Luhn checksum every payment card number satisfies.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trips(text: &str) -> bool {
        PaymentCardNumbers
            .check(text, GuardrailStage::Input)
            .is_err()
    }

    #[test]
    fn card_numbers_however_written() {
        assert!(trips("my card is 4111 1111 1111 1111, thanks"));
        assert!(trips("4111-1111-1111-1111"));
        assert!(trips("5500000000000004"));
        assert!(trips("card 378282246310005 (amex)"));
    }

    #[test]
    fn other_numbers_pass() {
        assert!(!trips("order A1001, call me at +1 555 0100"));
        assert!(!trips("4111 1111 1111 1112"), "fails the checksum");
        assert!(
            !trips("tracking 05212345678901"),
            "14 digits, not a valid card"
        );
        assert!(
            !trips(&"9".repeat(500)),
            "long runs are cheap and not cards"
        );
    }
}
