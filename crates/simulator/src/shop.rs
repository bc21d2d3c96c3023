//! The simulated shop: the line its customers call, the address they write
//! to, its site and its messaging accounts.

/// The company line customers call.
pub(crate) const SUPPORT_LINE: &str = "+31858881000";
/// The address customers write to.
pub(crate) const SUPPORT_ADDRESS: &str = "support@shop.example";
/// The shop's site, where web events come from.
pub(crate) const SITE: &str = "https://shop.example";
/// The WhatsApp business number.
pub(crate) const WHATSAPP_NUMBER: &str = "31858881000";
/// The Cloud API id of the WhatsApp business number.
pub(crate) const WHATSAPP_NUMBER_ID: &str = "106540352242922";
/// The Instagram business account.
pub(crate) const INSTAGRAM_ACCOUNT: &str = "17841400000000001";
