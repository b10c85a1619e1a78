use agent_tool::ToolContext;
use agent_tool::tool;

/// Generic.
#[tool]
fn generic<T>(value: T) -> String {
    let _ = value;
    String::new()
}

/// `impl Trait` parameter.
#[tool]
fn impl_param(text: impl Into<String>) -> String {
    text.into()
}

/// Patterns instead of names.
#[tool]
fn patterns((a, b): (u32, u32), _: bool) -> u32 {
    a + b
}

/// Borrowed parameters.
#[tool]
fn borrowed(name: &str, names: Vec<&'static str>) -> usize {
    name.len() + names.len()
}

/// Two contexts and `&mut`.
#[tool]
fn contexts(first: ToolContext, second: &mut ToolContext) {
    let _ = (first, second);
}

struct Thing;

impl Thing {
    /// A method.
    #[tool]
    fn method(&self, x: u32) -> u32 {
        x
    }
}

fn main() {}
