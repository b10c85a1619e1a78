//! The `agent` command line with the `{{tool}}` tool in it: `{{bin}} tools` lists it
//! beside the built-in tools, and `run`, `test` and `mock` use it.

// Tools register when their crate is linked. Naming the crate keeps it linked even though no
// function of it is called here; without this line its tools would silently be missing.
use {{lib}} as _;

fn main() {
    agent_cli::main()
}
