//! `agent completions SHELL`: a completion script for bash, zsh, fish, elvish or PowerShell,
//! generated from the same definition as the parser, so it never lags behind the flags.
//!
//! ```sh
//! agent completions bash > ~/.local/share/bash-completion/completions/agent
//! agent completions zsh > ~/.zfunc/_agent      # with `fpath+=~/.zfunc` before compinit
//! agent completions fish > ~/.config/fish/completions/agent.fish
//! ```

use std::process::ExitCode;

use clap_complete::Shell;

/// Arguments of `agent completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the script for `args.shell` of the command line `cli`.
pub fn run(args: CompletionsArgs, mut cli: clap::Command) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "agent", &mut script);
    crate::output::stdout(&String::from_utf8(script)?);
    Ok(ExitCode::SUCCESS)
}
