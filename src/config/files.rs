//! The resolve step: everything the config points at outside the TOML text, read before the
//! (pure) section validators run. The client secret (env `SMARTASSIST_CLIENT_SECRET` wins over
//! `api.client_secret_file`), the CA bundle, the JWE public key, and the working directory that
//! relative output paths are resolved against. A file that cannot be read is a problem naming
//! its key, collected with every other problem. Relative file paths are relative to the config
//! file's directory.

use std::path::{Path, PathBuf};

use super::parse::Problems;
use super::{RawConfig, Secret};

/// What the config's file references resolved to.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The secret from the environment or `api.client_secret_file`; `None` when neither is set
    /// or the file could not be read (a problem was pushed then).
    pub secret: Option<Secret>,
    /// `api.client_secret_file` was set but could not be used.
    pub secret_file_failed: bool,
    /// `api.ca_bundle_file`: its path and bytes.
    pub ca_bundle: Option<(PathBuf, Vec<u8>)>,
    /// `auth.jwe_public_key_file`: its path and text.
    pub jwe_key: Option<(PathBuf, String)>,
    /// The working directory, for relative `output.url` paths (`None`: unknown).
    pub cwd: Option<PathBuf>,
}

/// Reads every file the config references (and the working directory).
pub fn resolve(
    raw: &RawConfig,
    base_dir: &Path,
    env_secret: Option<String>,
    p: &mut Problems,
) -> Resolved {
    let mut out = Resolved {
        cwd: std::env::current_dir().ok(),
        ..Resolved::default()
    };
    match (
        env_secret.filter(|s| !s.is_empty()),
        &raw.api.client_secret_file,
    ) {
        (Some(s), _) => out.secret = Some(Secret::new(s)),
        (None, Some(file)) => {
            let file = relative_to(base_dir, file);
            warn_if_readable_by_others(&file);
            match std::fs::read_to_string(&file) {
                Ok(s) if !s.trim().is_empty() => out.secret = Some(Secret::new(s.trim())),
                Ok(_) => {
                    p.push(
                        "api.client_secret_file",
                        format!("{} is empty", file.display()),
                    );
                    out.secret_file_failed = true;
                }
                Err(e) => {
                    p.push(
                        "api.client_secret_file",
                        format!("cannot read {}: {e}", file.display()),
                    );
                    out.secret_file_failed = true;
                }
            }
        }
        (None, None) => {}
    }
    if let Some(file) = &raw.api.ca_bundle_file {
        let file = relative_to(base_dir, file);
        match std::fs::read(&file) {
            Ok(pem) => out.ca_bundle = Some((file, pem)),
            Err(e) => p.push(
                "api.ca_bundle_file",
                format!("cannot read {}: {e}", file.display()),
            ),
        }
    }
    if let Some(file) = &raw.auth.jwe_public_key_file {
        let file = relative_to(base_dir, file);
        match std::fs::read_to_string(&file) {
            Ok(text) => out.jwe_key = Some((file, text)),
            Err(e) => p.push(
                "auth.jwe_public_key_file",
                format!("cannot read {}: {e}", file.display()),
            ),
        }
    }
    out
}

/// A relative path in the config file is relative to the config file's directory.
fn relative_to(base_dir: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        base_dir.join(file)
    }
}

/// Warn (naming the file, never its content) when a secret file is readable by group or others.
fn warn_if_readable_by_others(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %file.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "The client secret file is accessible by group or others; restrict it with chmod 600."
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}
