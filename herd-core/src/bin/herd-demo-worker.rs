//! The demo worker as a standalone binary (see `herd_core::demo`).

fn main() {
    let code = herd_core::demo::run(std::env::args().skip(1).collect());
    std::process::exit(code);
}
