//! The `herd` command. See `herd --help`, or the README's "Gateway" section.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let self_command = match std::env::current_exe() {
        Ok(exe) => vec![exe.to_string_lossy().into_owned()],
        Err(_) => vec![std::env::args().next().unwrap_or_else(|| "herd".to_string())],
    };
    std::process::exit(herd_cli::run(args, self_command));
}
