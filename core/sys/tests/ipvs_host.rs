//! Without IPVS in the kernel (this host's), connecting says so in one line.

use lbd_sys::{Ipvs, SysError};

#[tokio::test]
async fn connect_without_ipvs_is_one_clear_line() {
    if std::env::var_os("LBD_IN_VM").is_some() {
        eprintln!("skipped: the VM kernel has IPVS");
        return;
    }
    match Ipvs::connect().await {
        // A host whose kernel has (or could load) ip_vs: nothing to check.
        Ok(_) => eprintln!("skipped: IPVS is available on this kernel"),
        Err(e) => {
            assert!(matches!(e, SysError::IpvsUnavailable), "{e:?}");
            assert_eq!(
                e.to_string(),
                "IPVS not available: the kernel lacks ip_vs (modprobe ip_vs)"
            );
        }
    }
}
