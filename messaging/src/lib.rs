//! samtale-messaging: the end-to-end-encrypted messaging core.
//!
//! It will own accounts with several profiles (work/private) and their
//! policies, devices and their vodozemac keys, Olm 1:1 and Megolm group
//! sessions, store-and-forward delivery, and the transport of SFrame call
//! keys. The server side keeps only ciphertext. Nothing is built yet.
