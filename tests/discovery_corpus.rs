//! Discovery held against real compose files and manifests from public projects
//! (tests/testdata/discovery-corpus, sources and hand-checked expected relations in
//! its sources.json) and the older compose test data (expected relations in
//! tests/testdata/discovery-corpus/expected-testdata.json). Each file is read as the
//! only source of its own repository, so every relation it holds is internal; the
//! test compares them with the expected ones:
//!
//! - explicit: `(from, to, key)` for compose keys naming a service;
//! - address-based: `(from, to)` for a host the service's process uses.
//!
//! It prints recall and precision and asserts the bars: address recall
//! >= 95 % at precision >= 98 %, explicit recall >= 99.5 %.

use std::collections::BTreeSet;

use serde::Deserialize;
use switchyard::api::repo_dependency_graph::DiscoveryFormat;
use switchyard::logic::discovery::{ADDRESS, SourceFile, discover};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/discovery-corpus/");
const COMPOSE_TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/compose/");

#[derive(Deserialize)]
struct Expected {
    file: String,
    format: DiscoveryFormat,
    explicit: Vec<(String, String, String)>,
    address: Vec<(String, String)>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path} is required: {e}"))
}

fn expectations() -> Vec<(String, Expected)> {
    let mut all = Vec::new();
    let sources: Vec<Expected> = serde_json::from_str(&read(&format!("{CORPUS}sources.json"))).expect("sources.json");
    all.extend(sources.into_iter().map(|e| (format!("{CORPUS}{}", e.file), e)));
    let older: Vec<Expected> =
        serde_json::from_str(&read(&format!("{CORPUS}expected-testdata.json"))).expect("expected-testdata.json");
    all.extend(older.into_iter().map(|e| (format!("{COMPOSE_TESTDATA}{}", e.file), e)));
    all
}

#[derive(Default)]
struct Score {
    expected: usize,
    found: usize,
    correct: usize,
}

impl Score {
    fn add<T: Ord + Clone + std::fmt::Debug>(&mut self, file: &str, kind: &str, want: &BTreeSet<T>, got: &BTreeSet<T>) {
        self.expected += want.len();
        self.found += got.len();
        self.correct += want.intersection(got).count();
        for missed in want.difference(got) {
            println!("{file}: {kind} missed {missed:?}");
        }
        for extra in got.difference(want) {
            println!("{file}: {kind} not expected {extra:?}");
        }
    }

    fn recall(&self) -> f64 {
        if self.expected == 0 { 1.0 } else { self.correct as f64 / self.expected as f64 }
    }

    fn precision(&self) -> f64 {
        if self.found == 0 { 1.0 } else { self.correct as f64 / self.found as f64 }
    }
}

#[test]
fn real_files_meet_the_address_and_explicit_recall_and_precision_bars() {
    let cases = expectations();
    assert!(cases.len() >= 17, "the corpus holds {} files", cases.len());
    let (mut explicit, mut address) = (Score::default(), Score::default());
    for (i, (path, expected)) in cases.iter().enumerate() {
        let file = SourceFile {
            repository: format!("corpus/r{i}"),
            file: expected.file.clone(),
            format: expected.format,
            content: read(path),
        };
        let d = discover(&[file]);
        assert!(d.errors.is_empty(), "{}: {:?}", expected.file, d.errors);
        let is_service = |to: &str| !to.starts_with("network:") && !to.starts_with("image:");
        let got_explicit: BTreeSet<(String, String, String)> = d
            .internal
            .iter()
            .filter(|r| r.via != ADDRESS && is_service(&r.to))
            .map(|r| (r.from.clone(), r.to.clone(), r.via.to_string()))
            .collect();
        let got_address: BTreeSet<(String, String)> =
            d.internal.iter().filter(|r| r.via == ADDRESS).map(|r| (r.from.clone(), r.to.clone())).collect();
        let want_explicit: BTreeSet<_> = expected.explicit.iter().cloned().collect();
        let want_address: BTreeSet<_> = expected.address.iter().cloned().collect();
        explicit.add(&expected.file, "explicit", &want_explicit, &got_explicit);
        address.add(&expected.file, "address", &want_address, &got_address);
    }
    println!(
        "{} files; explicit: {} expected, recall {:.1} %, precision {:.1} %; address-based: {} expected, {} found, recall {:.1} %, precision {:.1} %",
        cases.len(),
        explicit.expected,
        100.0 * explicit.recall(),
        100.0 * explicit.precision(),
        address.expected,
        address.found,
        100.0 * address.recall(),
        100.0 * address.precision(),
    );
    assert!(address.recall() >= 0.95, "address recall {:.3}", address.recall());
    assert!(address.precision() >= 0.98, "address precision {:.3}", address.precision());
    assert!(explicit.recall() >= 0.995, "explicit recall {:.3}", explicit.recall());
}
