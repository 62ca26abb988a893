//! The `hoist` command: argv -> [`cli::main`] -> exit code. Everything the
//! command does is in the library (`hoist::ops` and below); `cli` parses
//! and draws.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
