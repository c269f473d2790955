//! Generates the Kotlin, Swift and Python bindings from the built library
//! (`mobile-ffi/scripts/bindings` runs it).

fn main() {
    uniffi::uniffi_bindgen_main()
}
