//! A small recursive-descent parser and evaluator for arithmetic.
//!
//! Grammar (usual precedence; `^` binds tighter than unary minus and is right-associative, so
//! `-2^2` is `-4` and `2^3^2` is `512`):
//!
//! ```text
//! expr    = term (("+" | "-") term)*
//! term    = unary (("*" | "/" | "%") unary)*
//! unary   = ("-" | "+") unary | power
//! power   = primary ("^" unary)?
//! primary = number | constant | function "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//!
//! Input is limited to [`MAX_LENGTH`] characters and [`MAX_DEPTH`] levels of nesting, every
//! intermediate result must be finite, and every failure is a [`CalcError`] with a position:
//! nothing here can panic, loop or overflow the stack.

/// The longest expression accepted, in characters.
pub const MAX_LENGTH: usize = 1000;
/// The deepest nesting accepted (parentheses, unary signs, powers and calls together).
pub const MAX_DEPTH: usize = 64;

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// Nothing to evaluate.
    #[error("the expression is empty")]
    Empty,
    /// Too long to be a spoken calculation.
    #[error("the expression is longer than {MAX_LENGTH} characters")]
    TooLong,
    /// Too deeply nested.
    #[error("the expression is nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// A character or token that does not belong there.
    #[error("unexpected {found} at position {position}; {hint}")]
    Unexpected {
        /// What was found (`` `)` ``, `the end`).
        found: String,
        /// 1-based character position.
        position: usize,
        /// What would have been valid.
        hint: String,
    },
    /// A name that is neither a function nor a constant.
    #[error(
        "unknown name `{name}` at position {position}; known functions: {FUNCTIONS}; constants: pi, e"
    )]
    UnknownName {
        /// The name.
        name: String,
        /// 1-based character position.
        position: usize,
    },
    /// A function called with the wrong number of arguments.
    #[error("`{name}` takes {expected} argument(s), got {got}")]
    Arity {
        /// The function.
        name: String,
        /// How many it takes.
        expected: &'static str,
        /// How many it got.
        got: usize,
    },
    /// `x / 0` or `x % 0`.
    #[error("division by zero")]
    DivisionByZero,
    /// A result too large to represent.
    #[error("the result is too large")]
    Overflow,
    /// `sqrt(-1)`, `ln(0)` and the like.
    #[error("`{0}` has no real result")]
    NotReal(String),
}

const FUNCTIONS: &str = "sqrt, abs, round, floor, ceil, ln, log10, exp, sin, cos, tan, min, max";

/// Evaluates `input`.
pub fn evaluate(input: &str) -> Result<f64, CalcError> {
    if input.chars().count() > MAX_LENGTH {
        return Err(CalcError::TooLong);
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(CalcError::Empty);
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        end: input.chars().count() + 1,
    };
    let value = parser.expr()?;
    match parser.peek() {
        None => Ok(value),
        Some(token) => Err(parser.unexpected(token.clone(), "expected an operator")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Number(f64),
    Name(String),
    Op(char),
    Open,
    Close,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Kind,
    position: usize,
}

fn tokenize(input: &str) -> Result<Vec<Token>, CalcError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                // An exponent: `e` followed by digits (optionally signed); otherwise `e` is the
                // constant and implicit multiplication is an error later.
                if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                    let mut j = i + 1;
                    if j < chars.len() && matches!(chars[j], '+' | '-') {
                        j += 1;
                    }
                    if j < chars.len() && chars[j].is_ascii_digit() {
                        while j < chars.len() && chars[j].is_ascii_digit() {
                            j += 1;
                        }
                        i = j;
                    }
                }
                let text: String = chars[start..i].iter().collect();
                let value: f64 = text.parse().map_err(|_| CalcError::Unexpected {
                    found: format!("`{text}`"),
                    position,
                    hint: "numbers look like 42, 3.14 or 1e6".into(),
                })?;
                if !value.is_finite() {
                    return Err(CalcError::Overflow);
                }
                tokens.push(Token {
                    kind: Kind::Number(value),
                    position,
                });
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Token {
                    kind: Kind::Name(chars[start..i].iter().collect::<String>().to_lowercase()),
                    position,
                });
                continue;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                Kind::Op('^')
            }
            '+' | '-' | '*' | '/' | '%' | '^' => Kind::Op(c),
            '−' | '–' => Kind::Op('-'),
            '×' | '·' | '⋅' => Kind::Op('*'),
            '÷' => Kind::Op('/'),
            '(' | '[' => Kind::Open,
            ')' | ']' => Kind::Close,
            ',' => Kind::Comma,
            other => {
                return Err(CalcError::Unexpected {
                    found: format!("`{other}`"),
                    position,
                    hint: "use numbers, + - * / % ^, parentheses and function names".into(),
                });
            }
        };
        tokens.push(Token { kind, position });
        i += 1;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek_op(&self) -> Option<char> {
        match self.peek() {
            Some(Token {
                kind: Kind::Op(op), ..
            }) => Some(*op),
            _ => None,
        }
    }

    fn unexpected(&self, token: Token, hint: &str) -> CalcError {
        let found = match token.kind {
            Kind::Number(n) => format!("the number {n}"),
            Kind::Name(name) => format!("`{name}`"),
            Kind::Op(op) => format!("`{op}`"),
            Kind::Open => "`(`".into(),
            Kind::Close => "`)`".into(),
            Kind::Comma => "`,`".into(),
        };
        CalcError::Unexpected {
            found,
            position: token.position,
            hint: hint.into(),
        }
    }

    fn end_of_input(&self, hint: &str) -> CalcError {
        CalcError::Unexpected {
            found: "the end of the expression".into(),
            position: self.end,
            hint: hint.into(),
        }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(CalcError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        let mut value = self.term()?;
        while let Some(op @ ('+' | '-')) = self.peek_op() {
            self.pos += 1;
            let rhs = self.term()?;
            value = finite(if op == '+' { value + rhs } else { value - rhs })?;
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut value = self.unary()?;
        while let Some(op @ ('*' | '/' | '%')) = self.peek_op() {
            self.pos += 1;
            let rhs = self.unary()?;
            value = match op {
                '*' => finite(value * rhs)?,
                _ if rhs == 0.0 => return Err(CalcError::DivisionByZero),
                '/' => finite(value / rhs)?,
                _ => finite(value % rhs)?,
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        self.enter()?;
        let value = match self.peek_op() {
            Some('-') => {
                self.pos += 1;
                -self.unary()?
            }
            Some('+') => {
                self.pos += 1;
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Ok(value)
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.primary()?;
        if self.peek_op() == Some('^') {
            self.pos += 1;
            let exponent = self.unary()?;
            if base == 0.0 && exponent < 0.0 {
                return Err(CalcError::DivisionByZero);
            }
            let value = base.powf(exponent);
            if value.is_nan() {
                return Err(CalcError::NotReal(format!("{base} ^ {exponent}")));
            }
            return finite(value);
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, CalcError> {
        let Some(token) = self.next() else {
            return Err(self.end_of_input("expected a number, `(` or a function"));
        };
        match token.kind {
            Kind::Number(value) => Ok(value),
            Kind::Open => {
                self.enter()?;
                let value = self.expr()?;
                self.expect_close()?;
                self.depth -= 1;
                Ok(value)
            }
            Kind::Name(ref name) => self.name(name.clone(), token.position),
            _ => Err(self.unexpected(token, "expected a number, `(` or a function")),
        }
    }

    fn expect_close(&mut self) -> Result<(), CalcError> {
        match self.next() {
            Some(Token {
                kind: Kind::Close, ..
            }) => Ok(()),
            Some(other) => Err(self.unexpected(other, "expected `)`")),
            None => Err(self.end_of_input("a `(` is never closed")),
        }
    }

    fn name(&mut self, name: String, position: usize) -> Result<f64, CalcError> {
        match name.as_str() {
            "pi" | "π" => return Ok(std::f64::consts::PI),
            "e" => return Ok(std::f64::consts::E),
            _ => {}
        }
        if !is_function(&name) {
            return Err(CalcError::UnknownName { name, position });
        }
        match self.next() {
            Some(Token {
                kind: Kind::Open, ..
            }) => {}
            Some(other) => {
                return Err(self.unexpected(other, &format!("expected `(` after `{name}`")));
            }
            None => return Err(self.end_of_input(&format!("expected `(` after `{name}`"))),
        }
        self.enter()?;
        let mut args = vec![self.expr()?];
        while matches!(
            self.peek(),
            Some(Token {
                kind: Kind::Comma,
                ..
            })
        ) {
            self.pos += 1;
            args.push(self.expr()?);
        }
        self.expect_close()?;
        self.depth -= 1;
        apply(&name, &args)
    }
}

fn is_function(name: &str) -> bool {
    matches!(
        name,
        "sqrt"
            | "abs"
            | "round"
            | "floor"
            | "ceil"
            | "ln"
            | "log10"
            | "log"
            | "exp"
            | "sin"
            | "cos"
            | "tan"
            | "min"
            | "max"
    )
}

fn apply(name: &str, args: &[f64]) -> Result<f64, CalcError> {
    let one = || -> Result<f64, CalcError> {
        match args {
            [x] => Ok(*x),
            _ => Err(CalcError::Arity {
                name: name.to_owned(),
                expected: "1",
                got: args.len(),
            }),
        }
    };
    let value = match name {
        "sqrt" => {
            let x = one()?;
            if x < 0.0 {
                return Err(CalcError::NotReal(format!("sqrt({x})")));
            }
            x.sqrt()
        }
        "abs" => one()?.abs(),
        "round" => one()?.round(),
        "floor" => one()?.floor(),
        "ceil" => one()?.ceil(),
        "ln" | "log10" | "log" => {
            let x = one()?;
            if x <= 0.0 {
                return Err(CalcError::NotReal(format!("{name}({x})")));
            }
            if name == "ln" { x.ln() } else { x.log10() }
        }
        "exp" => one()?.exp(),
        "sin" => one()?.sin(),
        "cos" => one()?.cos(),
        "tan" => one()?.tan(),
        "min" | "max" => {
            if args.is_empty() {
                return Err(CalcError::Arity {
                    name: name.to_owned(),
                    expected: "1 or more",
                    got: 0,
                });
            }
            let fold = if name == "min" { f64::min } else { f64::max };
            args.iter().copied().fold(args[0], fold)
        }
        _ => {
            return Err(CalcError::UnknownName {
                name: name.to_owned(),
                position: 0,
            });
        }
    };
    finite(value)
}

fn finite(value: f64) -> Result<f64, CalcError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(CalcError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> f64 {
        evaluate(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("1 + 2 * 3"), 7.0);
        assert_eq!(eval("(1 + 2) * 3"), 9.0);
        assert_eq!(eval("10 - 4 - 3"), 3.0);
        assert_eq!(eval("2 ^ 3 ^ 2"), 512.0);
        assert_eq!(eval("-2 ^ 2"), -4.0);
        assert_eq!(eval("2 ^ -1"), 0.5);
        assert_eq!(eval("--3"), 3.0);
        assert_eq!(eval("7 % 3"), 1.0);
        assert_eq!(eval("2 ** 10"), 1024.0);
        assert_eq!(eval("6 × 7 ÷ 2 − 1"), 20.0);
        assert_eq!(eval(".5 + 1.25"), 1.75);
        assert_eq!(eval("1e3 + 2E-1"), 1000.2);
        assert_eq!(eval("[2 + 3] * 2"), 10.0);
    }

    #[test]
    fn functions_and_constants() {
        assert_eq!(eval("sqrt(16) + abs(-2)"), 6.0);
        assert_eq!(eval("max(1, 5, 3) - min(4, 2)"), 3.0);
        assert_eq!(eval("round(2.5) + floor(1.9) + ceil(1.1)"), 6.0);
        assert!((eval("2 * pi") - std::f64::consts::TAU).abs() < 1e-12);
        assert!((eval("ln(e)") - 1.0).abs() < 1e-12);
        assert_eq!(eval("log10(1000)"), 3.0);
        assert_eq!(eval("SQRT(4)"), 2.0);
    }

    #[test]
    fn errors_are_specific() {
        let cases: &[(&str, CalcError)] = &[
            ("", CalcError::Empty),
            ("1 / 0", CalcError::DivisionByZero),
            ("5 % (2 - 2)", CalcError::DivisionByZero),
            ("0 ^ -1", CalcError::DivisionByZero),
            ("10 ^ 400", CalcError::Overflow),
            ("1e308 * 10", CalcError::Overflow),
            ("sqrt(-1)", CalcError::NotReal("sqrt(-1)".into())),
            ("(-8) ^ 0.5", CalcError::NotReal("-8 ^ 0.5".into())),
            ("ln(0)", CalcError::NotReal("ln(0)".into())),
            (
                "min()",
                CalcError::Unexpected {
                    found: "`)`".into(),
                    position: 5,
                    hint: "expected a number, `(` or a function".into(),
                },
            ),
            (
                "sqrt(1, 2)",
                CalcError::Arity {
                    name: "sqrt".into(),
                    expected: "1",
                    got: 2,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&evaluate(text).unwrap_err(), want, "{text}");
        }
        assert_eq!(
            evaluate("2 +").unwrap_err().to_string(),
            "unexpected the end of the expression at position 4; expected a number, `(` or a function"
        );
        assert_eq!(
            evaluate("(1 + 2").unwrap_err().to_string(),
            "unexpected the end of the expression at position 7; a `(` is never closed"
        );
        assert_eq!(
            evaluate("2 3").unwrap_err().to_string(),
            "unexpected the number 3 at position 3; expected an operator"
        );
        assert!(matches!(
            evaluate("foo(1)"),
            Err(CalcError::UnknownName { position: 1, .. })
        ));
        assert!(matches!(
            evaluate("2 $ 3"),
            Err(CalcError::Unexpected { position: 3, .. })
        ));
        assert!(matches!(
            evaluate("1..2"),
            Err(CalcError::Unexpected { .. })
        ));
    }

    #[test]
    fn limits_hold() {
        assert_eq!(evaluate(&"1+".repeat(600)), Err(CalcError::TooLong));
        let deep = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(evaluate(&deep), Err(CalcError::TooDeep));
        assert_eq!(evaluate(&"-".repeat(500)), Err(CalcError::TooDeep));
        assert_eq!(
            evaluate(&format!("{}2", "2^".repeat(300))),
            Err(CalcError::TooDeep)
        );
        let ok = format!("{}1{}", "(".repeat(30), ")".repeat(30));
        assert_eq!(evaluate(&ok), Ok(1.0));
    }

    /// Random input never panics, and every success is finite.
    #[test]
    fn fuzz_random_strings() {
        let alphabet: Vec<char> = "0123456789.+-*/%^()[],e pisqrtmaxlnE×÷−é$\u{0}"
            .chars()
            .collect();
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..50_000 {
            let len = rng.usize(0..40);
            let text: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            if let Ok(value) = evaluate(&text) {
                assert!(value.is_finite(), "{text} gave {value}");
            }
        }
        // Structured fuzz: valid-looking expressions with extreme numbers.
        let atoms = [
            "0", "1", "-1", "1e308", "1e-308", "0.5", "pi", "(2)", "sqrt(2)",
        ];
        let ops = ["+", "-", "*", "/", "%", "^"];
        for _ in 0..20_000 {
            let mut text = atoms[rng.usize(..atoms.len())].to_owned();
            for _ in 0..rng.usize(0..8) {
                text.push_str(ops[rng.usize(..ops.len())]);
                text.push_str(atoms[rng.usize(..atoms.len())]);
            }
            if let Ok(value) = evaluate(&text) {
                assert!(value.is_finite(), "{text} gave {value}");
            }
        }
    }
}
