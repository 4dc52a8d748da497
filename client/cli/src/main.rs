//! The `xnai` binary: parses the command line and hands it to [`xnai_cli::cli::main`], which
//! prints results on stdout and a single `error: ...` line on stderr on failure.

fn main() -> std::process::ExitCode {
    xnai_proto::alloc::tune_for_object_streams();
    xnai_cli::cli::main()
}
