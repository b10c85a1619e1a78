//! The `agent` binary: the command line of `agent_cli`, with the built-in tools.
//!
//! A program of your own with your tools in it is the same two lines plus `use your_tools as _;`
//! (see the `agent_cli` library docs, or `agent new tool NAME`).

fn main() {
    agent_cli::main()
}
