//! What a device receives from the server: envelope bytes (Olm or Megolm
//! inside), decrypted by a real device, and the content inside.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use samtale_messaging::client::{Content, Wire};
use samtale_messaging::crypto::{Device, DeviceKeys};
use samtale_messaging::AccountId;

struct Pair {
    receiver: Device,
    sender: DeviceKeys,
}

fn pair() -> &'static Mutex<Pair> {
    static PAIR: OnceLock<Mutex<Pair>> = OnceLock::new();
    PAIR.get_or_init(|| {
        let mut receiver = Device::new(AccountId::new());
        let _ = receiver.key_upload(5, true);
        let sender = Device::new(AccountId::new()).keys();
        Mutex::new(Pair { receiver, sender })
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Content>(data);
    let Ok(wire) = serde_json::from_slice::<Wire>(data) else {
        return;
    };
    let Ok(mut p) = pair().lock() else { return };
    let sender = p.sender.clone();
    match wire {
        Wire::Olm { env } => {
            let _ = p.receiver.decrypt_olm(&sender, &env);
        }
        Wire::Group { key_share, message } => {
            if let Some(share) = key_share {
                let _ = p.receiver.decrypt_olm(&sender, &share);
            }
            let _ = p.receiver.group_decrypt(&message);
        }
    }
});
