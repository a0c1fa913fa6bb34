//! Shared fixtures: the committed model and throw-away model trees.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use gekko_inference::ModelMeta;

/// `models/` at the workspace root, holding the committed `direction/1`.
pub(crate) fn committed_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// The committed model version directory.
pub(crate) fn committed_dir() -> PathBuf {
    committed_root().join("direction/1")
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "gekko-inference-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the committed model to `root/name/version`, rewriting `meta.json` so
/// that its name and version match the new place. Writes into a hidden directory
/// first and renames, as a deployment would.
pub(crate) fn install_copy(root: &Path, name: &str, version: u64) -> PathBuf {
    let mut meta = ModelMeta::read(&committed_dir()).expect("committed meta");
    meta.name = name.to_owned();
    meta.version = version;
    let model_dir = root.join(name);
    std::fs::create_dir_all(&model_dir).expect("model dir");
    let tmp = model_dir.join(format!(".{version}.tmp"));
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    std::fs::copy(
        committed_dir().join("model.safetensors"),
        tmp.join("model.safetensors"),
    )
    .expect("copy weights");
    meta.write(&tmp).expect("write meta");
    let dir = model_dir.join(version.to_string());
    std::fs::rename(&tmp, &dir).expect("rename into place");
    dir
}
