//! The built-in profiles: every `parse/profiles/*.toml`, listed by the build script and read
//! here, so that adding a profile is adding a file. Each file says in its `[builtin]` table what
//! it is (`kind`) and where it stands (`order`); the rules match in the order the file lists
//! them.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::{CompiledProfile, Placement, Profile, ProfileError, Rule};
use crate::logs::structured::{Format, StructuredFields};

// `BUILTIN_TOML: &[(&str, &str)]`: (file name, text) of every `parse/profiles/*.toml`.
include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

/// In an `include` list: every `library` profile, in their order.
pub const LIBRARIES: &str = "@libraries";

/// What a file of `parse/profiles/` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinKind {
    /// Vars every built-in profile gets (and user rules with it); not a profile of its own.
    Common,
    /// One library's rules: a profile, and a part of every profile that includes
    /// [`LIBRARIES`] (`auto`, `json`, `logfmt`).
    Library,
    /// A profile made of others (`include`), usually with a decoder of its own.
    Profile,
}

/// A built-in file's `[builtin]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinMeta {
    /// What the file is: a library, a profile of others, or the common vars.
    pub kind: BuiltinKind,
    /// Place among the built-ins (lower first; ties by name): the order `parse --help`-style
    /// listings show and the matching order of [`LIBRARIES`].
    #[serde(default)]
    pub order: i64,
}

/// Deepest `include` chain followed (a cycle ends there as an error).
const MAX_INCLUDE_DEPTH: usize = 4;

/// A set of built-in profile files, read and checked once. [`builtins`] is the compiled-in
/// set; [`Builtins::from_texts`] reads any set the same way (tests add a profile with it).
#[derive(Debug, Clone)]
pub struct Builtins {
    /// Every file (common ones included), by order then name.
    files: Vec<(BuiltinMeta, Profile)>,
}

impl Builtins {
    /// Read `(origin, TOML text)` pairs. Every file needs a `[builtin]` table; names are unique;
    /// every profile's includes resolve.
    pub fn from_texts<'a>(
        texts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ProfileError> {
        let mut files = Vec::new();
        for (origin, text) in texts {
            let p = Profile::from_toml(text)?;
            let bad = |message: &str| ProfileError::Parse {
                profile: p.name.clone(),
                message: format!("{origin}: {message}"),
            };
            let Some(meta) = p.builtin else {
                return Err(bad(
                    "a built-in profile needs a [builtin] table (kind, order)",
                ));
            };
            if p.name.trim().is_empty() || p.name.starts_with('@') {
                return Err(bad("a built-in profile needs a name (not starting with @)"));
            }
            if files
                .iter()
                .any(|(_, q): &(BuiltinMeta, Profile)| q.name == p.name)
            {
                return Err(bad("two built-in profiles have this name"));
            }
            files.push((meta, p));
        }
        files.sort_by(|(a, p), (b, q)| a.order.cmp(&b.order).then_with(|| p.name.cmp(&q.name)));
        let set = Self { files };
        for name in set.names() {
            set.profile(name).ok_or_else(|| ProfileError::Parse {
                profile: name.to_owned(),
                message: format!(
                    "an include names no built-in profile, or includes nest deeper than {MAX_INCLUDE_DEPTH}"
                ),
            })?;
        }
        Ok(set)
    }

    /// The profiles one can choose (every file but the common ones), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|(m, _)| m.kind != BuiltinKind::Common)
            .map(|(_, p)| p.name.as_str())
    }

    /// The library profiles, in order: what [`LIBRARIES`] stands for.
    pub fn library_names(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|(m, _)| m.kind == BuiltinKind::Library)
            .map(|(_, p)| p.name.as_str())
    }

    /// A profile, uncompiled (so user rules can be added): the common vars, then its includes'
    /// rules, then its own; its own encoding and description.
    pub fn profile(&self, name: &str) -> Option<Profile> {
        self.resolve(name, 0)
    }

    /// A profile compiled (not cached: [`builtin_profile`] caches the compiled-in ones).
    pub fn compile(&self, name: &str) -> Result<CompiledProfile, ProfileError> {
        self.profile(name)
            .ok_or_else(|| ProfileError::UnknownProfile(name.into()))?
            .compile()
    }

    fn resolve(&self, name: &str, depth: usize) -> Option<Profile> {
        if depth > MAX_INCLUDE_DEPTH {
            return None;
        }
        let (_, own) = self
            .files
            .iter()
            .find(|(m, p)| p.name == name && m.kind != BuiltinKind::Common)?;
        let mut own = own.clone();
        let mut parts: Vec<Profile> = self
            .files
            .iter()
            .filter(|(m, _)| m.kind == BuiltinKind::Common)
            .map(|(_, p)| p.clone())
            .collect();
        for include in std::mem::take(&mut own.include) {
            if include == LIBRARIES {
                for lib in self.library_names() {
                    parts.push(self.resolve(lib, depth + 1)?);
                }
            } else {
                parts.push(self.resolve(&include, depth + 1)?);
            }
        }
        let (format, json, description) = (own.format, own.json.clone(), own.description.clone());
        parts.push(own);
        let mut merged = Profile::merge(name, parts).ok()?;
        // The profile's own encoding and description, not its includes'.
        merged.format = format;
        merged.json = json;
        merged.description = description;
        Some(merged)
    }
}

/// The `(file name, TOML text)` of every compiled-in profile file, by file name.
pub fn builtin_toml() -> &'static [(&'static str, &'static str)] {
    BUILTIN_TOML
}

/// The compiled-in profiles (`parse/profiles/*.toml`), read once per process.
pub fn builtins() -> &'static Builtins {
    static SET: OnceLock<Builtins> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = Builtins::from_texts(BUILTIN_TOML.iter().copied())
            .expect("built-in profiles are valid");
        for (_, p) in &mut set.files {
            for r in &mut p.rules {
                r.compiled_in = true;
            }
        }
        set
    })
}

/// Names of the built-in profiles, in order: `auto` (every library profile, JSON and logfmt
/// lines decoded by their first bytes), the library profiles, then the structured decoders.
pub fn builtin_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| builtins().names().collect())
}

/// The library profiles that make up `auto`, in matching order.
pub fn library_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| builtins().library_names().collect())
}

impl Profile {
    /// A built-in profile, uncompiled (so user rules can be added): one of [`builtin_names`].
    pub fn builtin(name: &str) -> Option<Self> {
        builtins().profile(name)
    }
}

/// A built-in profile, compiled once and shared: one of [`builtin_names`] (`auto`, the
/// default, is every library profile).
pub fn builtin_profile(name: &str) -> Option<Arc<CompiledProfile>> {
    // Compiled on first use, one by one: a process that reads one library's logs does not
    // hold every profile's regexes.
    static CACHE: OnceLock<Vec<OnceLock<Arc<CompiledProfile>>>> = OnceLock::new();
    let names = builtin_names();
    let cache = CACHE.get_or_init(|| names.iter().map(|_| OnceLock::new()).collect());
    let i = names.iter().position(|n| *n == name)?;
    let p = cache[i].get_or_init(|| {
        let p = builtins().compile(name).expect("built-in profiles compile");
        Arc::new(p)
    });
    Some(Arc::clone(p))
}

/// Compile a profile by name with user rules, as the config describes it.
pub fn compile_profile(
    name: &str,
    user_rules: impl IntoIterator<Item = Rule>,
    placement: Placement,
) -> Result<Arc<CompiledProfile>, ProfileError> {
    compile_profile_with(name, user_rules, placement, None)
}

/// [`compile_profile`] with the config's `[json_fields]`: the keys of JSON / logfmt lines for
/// a profile that decodes them (`auto`, `json`, `tracing-json`, `logfmt`).
pub fn compile_profile_with(
    name: &str,
    user_rules: impl IntoIterator<Item = Rule>,
    placement: Placement,
    json_fields: Option<&StructuredFields>,
) -> Result<Arc<CompiledProfile>, ProfileError> {
    let mut base =
        Profile::builtin(name).ok_or_else(|| ProfileError::UnknownProfile(name.into()))?;
    let mut user_rules = user_rules.into_iter().peekable();
    let own_fields = json_fields.is_some() && base.format != Format::Text;
    if user_rules.peek().is_none() && !own_fields {
        // Nothing of the config's own: the built-in, compiled once per process (`check-config`
        // and the command that follows it, and every stream, share it).
        return builtin_profile(name).ok_or_else(|| ProfileError::UnknownProfile(name.into()));
    }
    if let Some(j) = json_fields
        && base.format != Format::Text
    {
        base.json = Some(j.clone());
    }
    Ok(Arc::new(
        base.with_user_rules(user_rules, placement).compile()?,
    ))
}
