//! The tokens file (`--auth-tokens`): who may call the API with which scopes. It holds the
//! SHA-256 of each token, never the token, so reading the file does not let anyone in.
//!
//! ```toml
//! [[token]]
//! name = "ci"
//! sha256 = "5f1c…"                    # `scheduler token new` prints this line
//! scopes = ["product:vps4:write"]
//!
//! [[subject]]                          # --trust-cert-subject-header
//! dn = "CN=vps4-deployer,O=Example"
//! scopes = ["product:vps4:read"]
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::scope::{Caller, Scope};

/// A token's printable prefix: it makes a leaked token easy to recognise in logs and scanners.
const PREFIX: &str = "sch_";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    subject: Vec<SubjectEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectEntry {
    dn: String,
    name: Option<String>,
    scopes: Vec<String>,
}

struct Known {
    hash: [u8; 32],
    caller: Caller,
}

/// The tokens file as loaded, re-read on demand (SIGHUP): a file that fails to load leaves
/// the tokens in use as they were.
pub struct TokensFile {
    path: PathBuf,
    current: RwLock<Arc<Tokens>>,
}

impl TokensFile {
    /// Loads the file; it must grant something.
    pub fn open(path: &Path) -> Result<TokensFile, String> {
        let tokens = Tokens::load_granting(path)?;
        Ok(TokensFile { path: path.to_owned(), current: RwLock::new(Arc::new(tokens)) })
    }

    /// The tokens in use.
    pub fn get(&self) -> Arc<Tokens> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the file again and uses it; on error the tokens in use stay.
    pub fn reload(&self) -> Result<(usize, usize), String> {
        let tokens = Tokens::load_granting(&self.path)?;
        let counts = tokens.counts();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
        Ok(counts)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The loaded file.
pub struct Tokens {
    tokens: Vec<Known>,
    subjects: Vec<(String, Caller)>,
}

/// A caller's name: 1 to 200 bytes, no control characters (it is stored with every change).
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() || name.len() > 200 {
        Err("must be 1 to 200 bytes")
    } else if name.chars().any(char::is_control) {
        Err("must not hold control characters")
    } else {
        Ok(())
    }
}

impl Tokens {
    /// Reads and checks the file; an error names the entry and field at fault.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Loads the file, refusing one that grants nothing.
    fn load_granting(path: &Path) -> Result<Tokens, String> {
        let tokens = Tokens::load(path)?;
        if tokens.counts() == (0, 0) {
            return Err(format!(
                "{}: the tokens file grants nothing (no [[token]] or [[subject]] entries)",
                path.display()
            ));
        }
        Ok(tokens)
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut tokens = Vec::new();
        for (i, t) in file.token.into_iter().enumerate() {
            let at = format!("token[{i}] ({})", t.name);
            check_name(&t.name).map_err(|why| format!("token[{i}].name {why}"))?;
            let hash = parse_hash(&t.sha256).ok_or_else(|| format!("{at}.sha256 is not 64 hexadecimal digits"))?;
            if tokens.iter().any(|k: &Known| k.caller.name == t.name) {
                return Err(format!("{at}.name is used twice"));
            }
            let scopes = parse_scopes(&t.scopes).map_err(|e| format!("{at}.scopes: {e}"))?;
            tokens.push(Known { hash, caller: Caller { name: t.name, scopes } });
        }
        let mut subjects = Vec::new();
        for (i, s) in file.subject.into_iter().enumerate() {
            let dn = s.dn.trim().to_owned();
            if dn.is_empty() {
                return Err(format!("subject[{i}].dn is empty"));
            }
            let scopes = parse_scopes(&s.scopes).map_err(|e| format!("subject[{i}] ({dn}).scopes: {e}"))?;
            let name = s.name.unwrap_or_else(|| dn.clone());
            check_name(&name).map_err(|why| format!("subject[{i}] ({dn}).name {why}"))?;
            // Names key the audit trail and the rate limit: one name, one caller.
            if tokens.iter().any(|k: &Known| k.caller.name == name)
                || subjects.iter().any(|(_, c): &(String, Caller)| c.name == name)
            {
                return Err(format!("subject[{i}] ({dn}).name `{name}` is used twice (by a token or a subject)"));
            }
            subjects.push((dn, Caller { name, scopes }));
        }
        Ok(Tokens { tokens, subjects })
    }

    /// How many tokens and subjects the file grants.
    pub fn counts(&self) -> (usize, usize) {
        (self.tokens.len(), self.subjects.len())
    }

    /// The caller a presented token belongs to. Every known hash is compared, in constant time,
    /// whether or not an earlier one matched.
    pub fn find(&self, presented: &str) -> Option<&Caller> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for k in &self.tokens {
            if bool::from(k.hash.ct_eq(&hash)) {
                found = Some(&k.caller);
            }
        }
        found
    }

    /// The caller a certificate subject maps to (exact match, surrounding spaces ignored).
    pub fn subject(&self, dn: &str) -> Option<&Caller> {
        let dn = dn.trim();
        self.subjects.iter().find(|(d, _)| d == dn).map(|(_, c)| c)
    }
}

fn parse_scopes(scopes: &[String]) -> Result<Vec<Scope>, String> {
    if scopes.is_empty() {
        return Err("no scopes: give at least one".to_owned());
    }
    scopes.iter().map(|s| Scope::parse(s)).collect()
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A new random token (256 bits from the operating system) and its SHA-256 in hex.
pub fn generate() -> Result<(String, String), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the operating system: {e}"))?;
    let token = format!("{PREFIX}{}", hex(&bytes));
    let hash = hex(&Sha256::digest(token.as_bytes()));
    Ok((token, hash))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The TOML a new token adds to the tokens file.
pub fn entry(name: &str, hash: &str, scopes: &[Scope]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[[token]]\nname = {}\nsha256 = \"{hash}\"\nscopes = [{}]\n", toml_string(name), scopes.join(", "))
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_found_by_the_line_printed_for_it() {
        let (token, hash) = generate().unwrap();
        assert!(token.starts_with("sch_") && token.len() == 68);
        let scopes = [Scope::Write("vps4".into())];
        let text = entry("ci \"quoted\"", &hash, &scopes);
        let tokens = Tokens::parse(&text).unwrap();
        let c = tokens.find(&token).expect("found");
        assert_eq!(c.name, "ci \"quoted\"");
        assert_eq!(c.scopes, scopes);
        assert!(tokens.find(&token[..67]).is_none());
        assert!(tokens.find("").is_none());
    }

    #[test]
    fn bad_files_name_the_entry_and_field() {
        let zeros = "0".repeat(64);
        let bad: Vec<(String, &str)> = vec![
            ("[[token]]\nname = \"a\"\nsha256 = \"xyz\"\nscopes = [\"admin\"]".into(), "token[0] (a).sha256"),
            (format!("[[token]]\nname = \"a\"\nsha256 = \"{zeros}\"\nscopes = []"), "token[0] (a).scopes"),
            (format!("[[token]]\nname = \"a\"\nsha256 = \"{zeros}\"\nscopes = [\"root\"]"), "`root`"),
            (format!("[[token]]\nname = \"a\"\nsha256 = \"{zeros}\"\nscopes = [\"admin\"]\nextra = 1"), "extra"),
            ("[[subject]]\ndn = \" \"\nscopes = [\"admin\"]".into(), "subject[0].dn"),
            (format!("[[token]]\nname = \"a\\u0000\"\nsha256 = \"{zeros}\"\nscopes = [\"admin\"]"), "control"),
            (
                format!(
                    "[[token]]\nname = \"ops\"\nsha256 = \"{zeros}\"\nscopes = [\"admin\"]\n\
                     [[subject]]\ndn = \"CN=x\"\nname = \"ops\"\nscopes = [\"admin\"]"
                ),
                "used twice",
            ),
        ];
        for (text, needle) in bad {
            let e = Tokens::parse(&text).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(e.contains(needle), "{e} should name {needle}");
        }
    }
}
