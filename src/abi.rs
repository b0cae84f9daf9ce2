// Every enum and define of vppcom.h (VPP v26.06), declared once.
//
// This file is compiled twice: into the library (the constants the Rust code uses) and into
// build.rs via `include!` (the C text of the generated header). cbindgen cannot express
// duplicate enum values (VPPCOM_EAGAIN == VPPCOM_EWOULDBLOCK) or string defines the way
// upstream spells them, so the header's enums and defines are rendered from [`C_ENUMS`] and
// [`C_DEFINES`] here, while structs and prototypes come from cbindgen.

/// A C enum of the header: `typedef enum TAG { NAME = VALUE, ... } TYPEDEF;`.
pub struct CEnum {
    pub typedef: &'static str,
    pub tag: &'static str,
    pub items: &'static [(&'static str, i64)],
}

/// A `#define NAME TEXT` of the header.
pub struct CDefine {
    pub name: &'static str,
    pub text: &'static str,
}

macro_rules! c_enums {
    ($( $ty:ident ($tag:literal) { $($name:ident = $val:expr),* $(,)? } )*) => {
        $(
            #[allow(non_camel_case_types, dead_code)]
            pub type $ty = ::core::ffi::c_int;
            $( #[allow(dead_code)] pub const $name: $ty = $val; )*
        )*
        /// The header's enums, in header order.
        pub const C_ENUMS: &[CEnum] = &[$(
            CEnum { typedef: stringify!($ty), tag: $tag, items: &[$((stringify!($name), $val as i64)),*] },
        )*];
    };
}

macro_rules! c_defines {
    ($( $name:ident : $rty:ty = $val:expr => $text:literal ;)*) => {
        $( #[allow(dead_code)] pub const $name: $rty = $val; )*
        /// The header's object-like defines, in header order.
        pub const C_DEFINES: &[CDefine] = &[$( CDefine { name: stringify!($name), text: $text }, )*];
    };
}

// Linux errno values (x86_64 and aarch64 agree): the header upstream spells them -EAGAIN etc.
const EAGAIN: i32 = 11;
const EINPROGRESS: i32 = 115;
const EFAULT: i32 = 14;
const ENOMEM: i32 = 12;
const EINVAL: i32 = 22;
const EBADFD: i32 = 77;
const EAFNOSUPPORT: i32 = 97;
const ECONNABORTED: i32 = 103;
const ECONNRESET: i32 = 104;
const ENOTCONN: i32 = 107;
const ECONNREFUSED: i32 = 111;
const ETIMEDOUT: i32 = 110;
const EEXIST: i32 = 17;
const ENOPROTOOPT: i32 = 92;
const EPIPE: i32 = 32;
const ENOENT: i32 = 2;
const EADDRINUSE: i32 = 98;
const ENOTSUP: i32 = 95;

c_defines! {
    INVALID_SESSION_ID: u32 = 0xFFFF_FFFF => "((uint32_t)~0)";
    VPPCOM_CONF_DEFAULT: &str = "/etc/vpp/vcl.conf" => "\"/etc/vpp/vcl.conf\"";
    VPPCOM_ENV_CONF: &str = "VCL_CONFIG" => "\"VCL_CONFIG\"";
    VPPCOM_ENV_DEBUG: &str = "VCL_DEBUG" => "\"VCL_DEBUG\"";
    VPPCOM_ENV_APP_PROXY_TRANSPORT_TCP: &str = "VCL_APP_PROXY_TRANSPORT_TCP"
        => "\"VCL_APP_PROXY_TRANSPORT_TCP\"";
    VPPCOM_ENV_APP_PROXY_TRANSPORT_UDP: &str = "VCL_APP_PROXY_TRANSPORT_UDP"
        => "\"VCL_APP_PROXY_TRANSPORT_UDP\"";
    VPPCOM_ENV_APP_NAMESPACE_ID: &str = "VCL_APP_NAMESPACE_ID" => "\"VCL_APP_NAMESPACE_ID\"";
    VPPCOM_ENV_APP_NAMESPACE_SECRET: &str = "VCL_APP_NAMESPACE_SECRET"
        => "\"VCL_APP_NAMESPACE_SECRET\"";
    VPPCOM_ENV_APP_SCOPE_LOCAL: &str = "VCL_APP_SCOPE_LOCAL" => "\"VCL_APP_SCOPE_LOCAL\"";
    VPPCOM_ENV_APP_SCOPE_GLOBAL: &str = "VCL_APP_SCOPE_GLOBAL" => "\"VCL_APP_SCOPE_GLOBAL\"";
    VPPCOM_ENV_APP_USE_MQ_EVENTFD: &str = "VCL_APP_USE_MQ_EVENTFD" => "\"VCL_APP_USE_MQ_EVENTFD\"";
    VPPCOM_ENV_VPP_API_SOCKET: &str = "VCL_VPP_API_SOCKET" => "\"VCL_VPP_API_SOCKET\"";
    VPPCOM_ENV_VPP_SAPI_SOCKET: &str = "VCL_VPP_SAPI_SOCKET" => "\"VCL_VPP_SAPI_SOCKET\"";
    VCL_UDP_OPTS_BASE: u32 = 1 << 16 => "(VPPCOM_PROTO_UDP << 16)";
    VCL_UDP_SEGMENT: u32 = 1 << 16 => "(VCL_UDP_OPTS_BASE + 0)";
    VCL_IP_OPTS_BASE: u32 = 127 << 16 => "(127 << 16)";
    VCL_IP_PKTINFO: u32 = (127 << 16) + 1 => "(VCL_IP_OPTS_BASE + 1)";
}

c_enums! {
    vppcom_proto_t ("vppcom_proto_") {
        VPPCOM_PROTO_TCP = 0,
        VPPCOM_PROTO_UDP = 1,
        VPPCOM_PROTO_NONE = 2,
        VPPCOM_PROTO_TLS = 3,
        VPPCOM_PROTO_QUIC = 4,
        VPPCOM_PROTO_DTLS = 5,
        VPPCOM_PROTO_SRTP = 6,
        VPPCOM_PROTO_HTTP = 7,
    }
    vppcom_is_ip4_t ("") {
        VPPCOM_IS_IP6 = 0,
        VPPCOM_IS_IP4 = 1,
    }
    vppcom_error_t ("") {
        VPPCOM_OK = 0,
        VPPCOM_EAGAIN = -EAGAIN,
        VPPCOM_EWOULDBLOCK = -EAGAIN,
        VPPCOM_EINPROGRESS = -EINPROGRESS,
        VPPCOM_EFAULT = -EFAULT,
        VPPCOM_ENOMEM = -ENOMEM,
        VPPCOM_EINVAL = -EINVAL,
        VPPCOM_EBADFD = -EBADFD,
        VPPCOM_EAFNOSUPPORT = -EAFNOSUPPORT,
        VPPCOM_ECONNABORTED = -ECONNABORTED,
        VPPCOM_ECONNRESET = -ECONNRESET,
        VPPCOM_ENOTCONN = -ENOTCONN,
        VPPCOM_ECONNREFUSED = -ECONNREFUSED,
        VPPCOM_ETIMEDOUT = -ETIMEDOUT,
        VPPCOM_EEXIST = -EEXIST,
        VPPCOM_ENOPROTOOPT = -ENOPROTOOPT,
        VPPCOM_EPIPE = -EPIPE,
        VPPCOM_ENOENT = -ENOENT,
        VPPCOM_EADDRINUSE = -EADDRINUSE,
        VPPCOM_ENOTSUP = -ENOTSUP,
    }
    vppcom_attr_op_t ("") {
        VPPCOM_ATTR_GET_NREAD = 0,
        VPPCOM_ATTR_GET_NWRITE = 1,
        VPPCOM_ATTR_GET_FLAGS = 2,
        VPPCOM_ATTR_SET_FLAGS = 3,
        VPPCOM_ATTR_GET_LCL_ADDR = 4,
        VPPCOM_ATTR_SET_LCL_ADDR = 5,
        VPPCOM_ATTR_GET_PEER_ADDR = 6,
        VPPCOM_ATTR_GET_UNUSED = 7,
        VPPCOM_ATTR_SET_UNUSED = 8,
        VPPCOM_ATTR_GET_PROTOCOL = 9,
        VPPCOM_ATTR_GET_LISTEN = 10,
        VPPCOM_ATTR_GET_ERROR = 11,
        VPPCOM_ATTR_GET_TX_FIFO_LEN = 12,
        VPPCOM_ATTR_SET_TX_FIFO_LEN = 13,
        VPPCOM_ATTR_GET_RX_FIFO_LEN = 14,
        VPPCOM_ATTR_SET_RX_FIFO_LEN = 15,
        VPPCOM_ATTR_GET_REUSEADDR = 16,
        VPPCOM_ATTR_SET_REUSEADDR = 17,
        VPPCOM_ATTR_GET_REUSEPORT = 18,
        VPPCOM_ATTR_SET_REUSEPORT = 19,
        VPPCOM_ATTR_GET_BROADCAST = 20,
        VPPCOM_ATTR_SET_BROADCAST = 21,
        VPPCOM_ATTR_GET_V6ONLY = 22,
        VPPCOM_ATTR_SET_V6ONLY = 23,
        VPPCOM_ATTR_GET_KEEPALIVE = 24,
        VPPCOM_ATTR_SET_KEEPALIVE = 25,
        VPPCOM_ATTR_GET_TCP_NODELAY = 26,
        VPPCOM_ATTR_SET_TCP_NODELAY = 27,
        VPPCOM_ATTR_GET_TCP_KEEPIDLE = 28,
        VPPCOM_ATTR_SET_TCP_KEEPIDLE = 29,
        VPPCOM_ATTR_GET_TCP_KEEPINTVL = 30,
        VPPCOM_ATTR_SET_TCP_KEEPINTVL = 31,
        VPPCOM_ATTR_GET_TCP_USER_MSS = 32,
        VPPCOM_ATTR_SET_TCP_USER_MSS = 33,
        VPPCOM_ATTR_SET_CONNECTED = 34,
        VPPCOM_ATTR_SET_CKPAIR = 35,
        VPPCOM_ATTR_SET_VRF = 36,
        VPPCOM_ATTR_GET_VRF = 37,
        VPPCOM_ATTR_GET_DOMAIN = 38,
        VPPCOM_ATTR_SET_ENDPT_EXT_CFG = 39,
        VPPCOM_ATTR_SET_DSCP = 40,
        VPPCOM_ATTR_SET_IP_PKTINFO = 41,
        VPPCOM_ATTR_GET_IP_PKTINFO = 42,
        VPPCOM_ATTR_GET_ORIGINAL_DST = 43,
        VPPCOM_ATTR_GET_NWRITEQ = 44,
        VPPCOM_ATTR_GET_EXT_ENDPT = 45,
        VPPCOM_ATTR_GET_COOKIE = 46,
        VPPCOM_ATTR_SET_COOKIE = 47,
        VPPCOM_ATTR_GET_STREAM_FLAGS = 48,
        VPPCOM_ATTR_SET_STREAM_FLAGS = 49,
        VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE = 50,
        VPPCOM_ATTR_SET_APP_PROTO_ERR_CODE = 51,
    }
    vppcom_stream_flags_t ("") {
        VPPCOM_STREAM_F_UNIDIRECTIONAL = 1,
    }
}

/// Function-like helper macros of the header, C text (cbindgen cannot express them).
/// Upstream v26.06's versions do not work as written (VCL_EP_APP_TLV_LEN names `tlv` instead of
/// its parameter, POS subtracts the wrong way round and uses void-pointer arithmetic, which C++
/// rejects); these keep the names and intent: POS is the byte offset of a TLV inside
/// `app_tlvs`, NEXT is the following TLV or 0 when none is left.
pub const C_MACROS: &str = r#"#define VCL_EP_APP_TLV_LEN(tlv_) \
  ((uint32_t) (sizeof (vppcom_endpt_tlv_t) + (tlv_)->data_len))
#define VCL_EP_APP_TLV_POS(ep_, tlv_) \
  ((uint32_t) ((const uint8_t *) (tlv_) - (const uint8_t *) (ep_)->app_tlvs))
#define VCL_EP_APP_TLV_LEN_LEFT(ep_, tlv_) \
  ((ep_)->app_tlv_len - VCL_EP_APP_TLV_POS (ep_, tlv_))
#define VCL_EP_NEXT_APP_TLV(ep_, tlv_) \
  (VCL_EP_APP_TLV_LEN (tlv_) < VCL_EP_APP_TLV_LEN_LEFT (ep_, tlv_) \
     ? ((vppcom_endpt_tlv_t *) ((uint8_t *) (tlv_) + VCL_EP_APP_TLV_LEN (tlv_))) \
     : (vppcom_endpt_tlv_t *) 0)
"#;

/// Render the enums and defines as the C text that precedes cbindgen's structs.
pub fn render_c() -> String {
    let mut out = String::new();
    for d in C_DEFINES {
        out.push_str(&format!("#define {} {}\n", d.name, d.text));
        if d.name == "VPPCOM_ENV_VPP_SAPI_SOCKET" {
            out.push('\n');
            for e in C_ENUMS {
                render_enum(&mut out, e);
            }
        }
    }
    out.push('\n');
    out.push_str(C_MACROS);
    out
}

fn render_enum(out: &mut String, e: &CEnum) {
    if e.tag.is_empty() {
        out.push_str("typedef enum\n{\n");
    } else {
        out.push_str(&format!("typedef enum {}\n{{\n", e.tag));
    }
    for (name, val) in e.items {
        out.push_str(&format!("  {name} = {val},\n"));
    }
    out.push_str(&format!("}} {};\n\n", e.typedef));
}
