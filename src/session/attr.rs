//! Session attributes (VPPCOM_ATTR_*): filled by the attr work.
