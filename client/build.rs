//! Generates the client from the committed `../openapi.json` with progenitor.
//! The spec is used exactly as committed: no patching here.

use std::{env, fs, path::Path};

fn main() {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    println!("cargo:rerun-if-changed={}", spec_path.display());

    let text = fs::read_to_string(&spec_path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", spec_path.display()));
    let spec: openapiv3::OpenAPI = serde_json::from_str(&text).unwrap_or_else(|err| {
        panic!(
            "{} is not an OpenAPI 3.0 document: {err}",
            spec_path.display()
        )
    });

    let mut settings = progenitor::GenerationSettings::default();
    settings.with_interface(progenitor::InterfaceStyle::Builder);
    let tokens = progenitor::Generator::new(&settings)
        .generate_tokens(&spec)
        .unwrap_or_else(|err| panic!("progenitor cannot generate a client from the spec: {err}"));
    let file: syn::File = syn::parse2(tokens)
        .unwrap_or_else(|err| panic!("progenitor generated invalid Rust: {err}"));

    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("codegen.rs");
    fs::write(&out, prettyplease::unparse(&file))
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", out.display()));
}
