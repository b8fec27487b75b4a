//! The macros behind the one list of sources in `sources/mod.rs`.
//!
//! `cargo fmt` does not follow `mod` items declared by a macro: the sources' files are checked
//! by a unit test in `sources/mod.rs` instead (`rustfmt --check`).

/// Gathers source sections into one struct: their keys flattened into the TOML's top level,
/// `validate` and `build` run over them in the order listed. `registry!` uses it for
/// [`SourcesConfig`](crate::sources::SourcesConfig); a test gathers its own test-only source
/// with it the same way.
///
/// ```
/// use dge::sources::{discord::DiscordSection, files::FilesSection};
///
/// dge::gather_sources! { pub struct Mine { files: FilesSection, discord: DiscordSection } }
///
/// let log = dge::config::Config::default().log_settings();
/// assert!(Mine::default().build(&log).unwrap().is_empty());
/// ```
#[macro_export]
macro_rules! gather_sources {
    ($(#[$attr:meta])* $vis:vis struct $name:ident { $($field:ident: $ty:ty),+ $(,)? }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Default, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        $vis struct $name {
            $(
                #[serde(flatten)]
                pub $field: $ty,
            )+
        }

        impl $name {
            /// Every section's `validate`, in order.
            pub fn validate(
                &self,
                log: &$crate::sources::LogSettings,
            ) -> $crate::error::Result<()> {
                $($crate::sources::SourceConfig::validate(&self.$field, log)?;)+
                Ok(())
            }

            /// The sources the sections turn on, in order (the start order).
            pub fn build(
                &self,
                log: &$crate::sources::LogSettings,
            ) -> $crate::error::Result<::std::vec::Vec<::std::boxed::Box<dyn $crate::sources::Source>>> {
                let mut all = ::std::vec::Vec::new();
                $(all.extend($crate::sources::SourceConfig::build(&self.$field, log)?);)+
                Ok(all)
            }

            /// Each section deserialized on its own from the figment: an error inside one
            /// keeps its key path (`bot.0.token`) and origin (the file, a `DGE_` variable),
            /// which serde's `flatten` drops.
            pub fn extract_each(fig: &::figment::Figment) -> $crate::error::Result<Self> {
                Ok(Self {
                    $($field: fig.extract().map_err($crate::error::Error::config_file)?,)+
                })
            }
        }
    };
}

/// The one list of sources: declares each module and gathers its section into
/// `SourcesConfig`. A new source is its module plus one line in it.
macro_rules! registry {
    ($($field:ident: $module:ident::$section:ident),+ $(,)?) => {
        $(pub mod $module;)+

        crate::gather_sources! {
            /// Every source's section, flattened into the root config (`[[file]]` and
            /// `positions_file`, `[[bot]]` and `[discord]`, `[kubernetes]`, ...).
            pub struct SourcesConfig { $($field: $module::$section),+ }
        }
    };
}
