//! Embeds the cheapam crate (`cheapam/`, compiled and tested in this repo) into
//! k8sgen, so the copy k8sgen writes into an infra repo is byte for byte the
//! source that was tested here.

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let crate_dir = root.join("cheapam");
    let mut files = Vec::new();
    collect(&crate_dir, &crate_dir, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Every file of the cheapam crate: (path inside the crate, contents).\npub static CHEAPAM_FILES: &[(&str, &str)] = &[\n",
    );
    for rel in &files {
        let abs = crate_dir.join(rel);
        out.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("cheapam_files.rs");
    std::fs::write(dest, out).unwrap();
    println!("cargo:rerun-if-changed=cheapam");
    for rel in &files {
        println!("cargo:rerun-if-changed=cheapam/{rel}");
    }
}

/// The crate's source files: everything but build output and hidden files.
fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect(base, &path, out);
        } else {
            let rel = path.strip_prefix(base).unwrap();
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(rel.join("/"));
        }
    }
}
