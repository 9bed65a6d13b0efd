//! Prints the generated `tachyon.h` (see the crate docs).

fn main() {
    print!("{}", tachyon::HEADER);
}
