use agent_tool::tool;

// One function, four problems: all are reported, and `bad` is still emitted, so the call in
// `main` does not add a "cannot find function" error.
#[tool]
unsafe fn bad<'a>(text: &'a str, (x, y): (u8, u8), #[validate] z: u8) -> u8 {
    let _ = text;
    x + y + z
}

fn main() {
    let _ = unsafe { bad("a", (1, 2), 3) };
}
