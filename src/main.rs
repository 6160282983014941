//! Entry point: parse the command line, initialise logging, run the command, map the error to
//! an exit code (0 success, 1 runtime failure, 2 usage or config error).

use std::process::ExitCode;

use clap::Parser;
use smartassist_export::cli::Cli;
use smartassist_export::error_chain::error_chain;
use smartassist_export::{commands, memory, telemetry};

fn main() -> ExitCode {
    // Before any thread exists (see the module docs for why).
    memory::tune_allocator();
    let cli = Cli::parse();
    telemetry::init(cli.log_format, &cli.verbosity());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
