//! Connecting to IPVS on whatever kernel runs the test: without ip_vs (this
//! host's, the unit tier) it is one clear line; with it (the VM tier runs
//! this file too) the connection answers GET_INFO. Each branch asserts what
//! it saw, so neither kernel lets the test pass untested.

use lbd_sys::{Ipvs, SysError};

#[tokio::test]
async fn connect_is_one_clear_line_without_ipvs_and_works_with_it() {
    match Ipvs::connect().await {
        Ok(ipvs) => {
            let info = ipvs.info().await;
            assert!(info.is_ok(), "IPVS resolved but GET_INFO failed: {info:?}");
        }
        Err(e) => {
            assert!(matches!(e, SysError::IpvsUnavailable), "{e:?}");
            assert_eq!(
                e.to_string(),
                "IPVS not available: the kernel lacks ip_vs (modprobe ip_vs)"
            );
        }
    }
}
