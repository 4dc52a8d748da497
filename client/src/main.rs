//! The `xnai` binary: parses the command line and hands it to [`xnai_client::cli::main`], which
//! prints results on stdout and a single `error: ...` line on stderr on failure.

fn main() -> std::process::ExitCode {
    xnai_client::cli::main()
}
