fn main() {
    #[cfg(feature = "compare-upstream")]
    {
        let _ = tachyon_ipc::make_type_id(0, 1);
        println!("upstream linked");
    }
}
