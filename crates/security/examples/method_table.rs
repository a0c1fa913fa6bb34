fn main() {
    print!("{}", gekko_security::methods::markdown_table());
}
