//! ggml tensor types (block size and bytes per block, to size each tensor's data) and the names
//! of GGUF `general.file_type` values (the quantisation a user chose), from ggml's tables.

/// `(name, elements per block, bytes per block)` of ggml tensor type `ty`, if known.
pub fn tensor_type(ty: u32) -> Option<(&'static str, u64, u64)> {
    Some(match ty {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 36),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        _ => return None,
    })
}

/// Bytes of a tensor of type `ty` with `elements` elements, if the type is known.
pub fn tensor_bytes(ty: u32, elements: u64) -> Option<u64> {
    let (_, block, bytes) = tensor_type(ty)?;
    elements.div_ceil(block).checked_mul(bytes)
}

/// Name of a `general.file_type` value (llama.cpp's `llama_ftype`).
pub fn file_type_name(ftype: u64) -> &'static str {
    match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => "unknown",
    }
}

/// Name of a `{arch}.pooling_type` value (llama.cpp's `llama_pooling_type`).
pub fn pooling_type_name(pooling: u64) -> &'static str {
    match pooling {
        0 => "none",
        1 => "mean",
        2 => "cls",
        3 => "last",
        4 => "rank",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_blocks() {
        assert_eq!(tensor_bytes(0, 10), Some(40));
        assert_eq!(tensor_bytes(12, 512), Some(288));
        assert_eq!(tensor_bytes(8, 33), Some(68));
        assert_eq!(tensor_bytes(4, 1), None);
        assert_eq!(file_type_name(15), "Q4_K_M");
        assert_eq!(pooling_type_name(1), "mean");
    }
}
