//! The protocols in `protocols/`: valid for wayland-scanner (Debian's libwayland-bin, `--strict`:
//! checked against the DTD), and documented like upstream protocols (every interface, request,
//! event and enum has a description, every enum entry a summary).

use std::path::PathBuf;
use std::process::Command;

fn protocols() -> Vec<PathBuf> {
    let dir = wayheap_tests::vm::workspace_root().join("protocols");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no protocol XML in {}", dir.display());
    v
}

#[test]
fn wayland_scanner_accepts_every_protocol_strictly() {
    for xml in protocols() {
        for mode in ["client-header", "server-header", "private-code"] {
            let out = Command::new("wayland-scanner")
                .args(["--strict", mode])
                .arg(&xml)
                .arg("/dev/null")
                .output()
                .unwrap_or_else(|e| {
                    panic!("wayland-scanner: {e} (it is in Debian's libwayland-bin; scripts/install-deps installs it)")
                });
            assert!(
                out.status.success(),
                "wayland-scanner --strict {mode} {}: {}",
                xml.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The element names of every tag of `xml` that opens (not closes), with whether it
/// self-closes, in order.
fn tags(xml: &str) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>').expect("unterminated tag");
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.starts_with('/') || tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_owned();
        out.push((name, tag.ends_with('/'), tag.to_owned()));
    }
    out
}

#[test]
fn every_protocol_element_is_documented() {
    for xml in protocols() {
        let text = std::fs::read_to_string(&xml).unwrap();
        let t = tags(&text);
        let mut undocumented = Vec::new();
        for (i, (name, self_closing, raw)) in t.iter().enumerate() {
            match name.as_str() {
                "protocol" | "interface" | "request" | "event" | "enum" => {
                    // A protocol's copyright may come before its description.
                    let next = match t.get(i + 1) {
                        Some((n, _, _)) if n == "copyright" && name == "protocol" => i + 2,
                        _ => i + 1,
                    };
                    let next_is_description =
                        t.get(next).is_some_and(|(n, _, _)| n == "description");
                    if *self_closing || !next_is_description {
                        undocumented.push(raw.clone());
                    }
                }
                "entry" if !raw.contains("summary=") => undocumented.push(raw.clone()),
                "description" if !raw.contains("summary=") => undocumented.push(raw.clone()),
                _ => {}
            }
        }
        assert!(
            undocumented.is_empty(),
            "{}: undocumented elements: {undocumented:#?}",
            xml.display()
        );
        // Project prefix, versioned names.
        for (name, _, raw) in &t {
            if name == "interface" {
                assert!(
                    raw.contains("name=\"wayheap_") && raw.contains("_v"),
                    "{}: interface without the wayheap_ prefix or a version: {raw}",
                    xml.display()
                );
            }
        }
    }
}
