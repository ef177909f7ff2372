fn main() {
    eprintln!("shoal: not wired yet");
    std::process::exit(1);
}
