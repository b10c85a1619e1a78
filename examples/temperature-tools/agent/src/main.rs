//! The `agent` command line with the temperature tools in it: `temperature-agent tools` lists
//! them beside the built-in tools, and `run`, `test` and `mock` use them.

// Tools register when their crate is linked. Naming the crate keeps it linked even though no
// function of it is called here; without this line its tools would silently be missing.
use temperature_tools as _;

fn main() {
    agent_cli::main()
}
