//! The bounds on everything an integrator's configuration can make Tidings do (SPEC §12). Each
//! is documented in docs/configuration-options.md and docs/security.md; exceeding one is a `422`
//! naming the field. A count is checked before its entries, so a list far over its bound costs
//! one error, not one per entry.

/// Custom `headers` of a webhook.
pub const HEADERS: usize = 50;
/// Bytes of one custom header value.
pub const HEADER_VALUE_BYTES: usize = 8192;
/// Event type names in `triggers`.
pub const TRIGGERS: usize = 100;
/// Ids in a webhook's `branches` and, separately, in its `businessUnits`; also the units a
/// workspace may declare of each kind.
pub const UNIT_IDS: usize = 1000;
/// Names in `extraFields`.
pub const EXTRA_FIELDS: usize = 50;
/// Entries of `fieldMapping`.
pub const FIELD_MAPPINGS: usize = 100;
/// Bytes of one JSON pointer of `fieldMapping`.
pub const POINTER_BYTES: usize = 1024;
/// Bytes of a name: a `fieldMapping` target, an `extraFields` entry, a branch or business-unit
/// id of a webhook's filter.
pub const NAME_BYTES: usize = 256;
/// Details listed in one error body; the rest are counted in a last entry.
pub const ERROR_DETAILS: usize = 100;
/// The default bound of a shaped notification body in bytes (`delivery.max_payload_bytes`).
pub const DEFAULT_PAYLOAD_BYTES: usize = 1024 * 1024;
