//! Native code for the straight-line programs, through Cranelift.
//!
//! Each [`Program`] becomes one or more functions
//! `f(u, p, λ, t, out, scratch)` (one per chunk of [`CHUNK`] instructions,
//! run in order) that compute every instruction into an SSA value (no
//! register file, no dispatch) and store each of the program's roots into
//! `out` as soon as it is computed. Arithmetic, integer powers and selects
//! are inlined, `exp` too in small programs (the same operations as
//! `revode_model::exp::exp`; a call of it in large ones, [`ExpCode`]);
//! `g(z)`/`g'(z)` and the rarer operations call
//! the same Rust functions the interpreter uses, so both backends give
//! bitwise equal results (tested in tests/backends.rs).
//!
//! **Bounded live ranges.** Cranelift's register allocator slows down
//! sharply (superlinearly) when thousands of values are live at once, which
//! a straight-line program of a large model would otherwise have: every
//! input loaded at the start, every constant hoisted, and, in the vjp, every
//! forward value waiting for the reverse sweep. So no SSA value here lives
//! longer than [`WINDOW`] instructions: inputs are loaded where they are
//! used, constants are emitted where they are used, and a computed value
//! needed later than that (or in a later chunk) is stored into `scratch`
//! (the interpreter's register numbering, one `f64` per register) when it
//! is computed and loaded again where it is used. Compile time is then
//! linear in the program's length (about 10⁴ host instructions per
//! Cranelift instruction, callgrind). Small models barely notice (host
//! instructions per call, callgrind, against every value left live: the
//! seed model's rhs 615 vs 583 and vjp 899 vs 851, the cortical model's 1 430
//! vs 1 480 and 2 955 vs 3 206).
//!
//! `unsafe` is confined to this module: calling a function pointer that
//! Cranelift produced, and declaring the finished code `Send + Sync`.
#![allow(unsafe_code)]

use std::fmt;

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, FuncRef, InstBuilder, MemFlagsData, StackSlot, StackSlotData,
    StackSlotKind, UserFuncName, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

use crate::dag::{eval_bin, eval_un, Bin, Un};
use crate::program::{Input, Instr, Program};

/// `f(u, p, λ, t, out, scratch)`.
type Compiled = extern "C" fn(*const f64, *const f64, *const f64, f64, *mut f64, *mut f64);

/// Longest live range of an SSA value, in instructions (see the module docs).
const WINDOW: u32 = 32;

/// Instructions per native function.
const CHUNK: usize = 4096;

extern "C" fn exprel_pair_helper(z: f64, e: f64, out: *mut f64) {
    let (g, dg) = revode_model::exprel_inv_and_deriv_em1(z, e - 1.0);
    // SAFETY: `out` is the 16-byte stack slot the generated code passes.
    unsafe {
        *out = g;
        *out.add(1) = dg;
    }
}

const UNARY: [Un; 15] = [
    Un::Neg,
    Un::Exp,
    Un::Ln,
    Un::Log10,
    Un::Sqrt,
    Un::Abs,
    Un::Sin,
    Un::Cos,
    Un::Tan,
    Un::Tanh,
    Un::Sinh,
    Un::Cosh,
    Un::Atan,
    Un::Heav,
    Un::Sign,
];

const BINARY: [Bin; 17] = [
    Bin::Add,
    Bin::Sub,
    Bin::Mul,
    Bin::Div,
    Bin::Pow,
    Bin::Min,
    Bin::Max,
    Bin::Lt,
    Bin::Gt,
    Bin::Le,
    Bin::Ge,
    Bin::Eq,
    Bin::Ne,
    Bin::And,
    Bin::Or,
    Bin::ExprelInv,
    Bin::ExprelInvDeriv,
];

// Exponentials get helpers of their own, without the operation code the
// generic one dispatches on: in code too large to inline `exp` (the
// 1 000-compartment cable) they are most of the calls. (A helper of its own
// for z/(e^z − 1), the next most frequent, made no measurable difference.)
extern "C" fn exp_helper(x: f64) -> f64 {
    revode_model::exp::exp(x)
}

extern "C" fn exp_pair_helper(x0: f64, x1: f64, out: *mut f64) {
    let (e0, e1) = (revode_model::exp::exp(x0), revode_model::exp::exp(x1));
    // SAFETY: `out` is the stack slot the generated code passes (32 bytes).
    unsafe {
        *out = e0;
        *out.add(1) = e1;
    }
}

extern "C" fn exp_quad_helper(x0: f64, x1: f64, x2: f64, x3: f64, out: *mut f64) {
    let e = revode_model::exp::exp4([x0, x1, x2, x3]);
    // SAFETY: `out` is the 32-byte stack slot the generated code passes.
    unsafe { std::ptr::copy_nonoverlapping(e.as_ptr(), out, 4) };
}

extern "C" fn unary_helper(op: i32, x: f64) -> f64 {
    eval_un(UNARY[op as usize], x)
}

extern "C" fn binary_helper(op: i32, a: f64, b: f64) -> f64 {
    eval_bin(BINARY[op as usize], a, b)
}

fn code_of<T: PartialEq>(table: &[T], op: &T) -> i64 {
    table
        .iter()
        .position(|o| o == op)
        .expect("every op is listed") as i64
}

/// `revode_model::exp::exp` inlined, operation for operation (so the
/// result is bitwise the same; tests/backends.rs): clamp, `k = round(x/ln 2)`
/// by the 1.5·2^52 trick, `r = x − k ln 2` in two parts, the degree-13
/// Taylor polynomial by Estrin's scheme, and `2^k` from exponent bits.
fn emit_exp(b: &mut FunctionBuilder, x: Value) -> Value {
    use revode_model::exp::{INV_FACT as C, LN2_HI, LN2_LO, ROUND_MAGIC};
    let k = |b: &mut FunctionBuilder, c: f64| b.ins().f64const(c);
    let lo = k(b, revode_model::exp::EXP_ARG_MIN);
    let hi = k(b, revode_model::exp::EXP_ARG_MAX);
    // x.clamp(lo, hi) as `x < lo ? lo : x` then `hi < x ? hi : x`: NaN
    // stays NaN as in Rust's clamp, and Cranelift lowers each select to
    // one maxsd/minsd (fmax/fmin would be NaN- and zero-sign-exact
    // sequences of several instructions).
    let below = b.ins().fcmp(FloatCC::LessThan, x, lo);
    let x = b.ins().select(below, lo, x);
    let above = b.ins().fcmp(FloatCC::LessThan, hi, x);
    let x = b.ins().select(above, hi, x);
    let log2e = k(b, std::f64::consts::LOG2_E);
    let magic = k(b, ROUND_MAGIC);
    let t = b.ins().fmul(x, log2e);
    let shifted = b.ins().fadd(t, magic);
    // a constant per use: each becomes a memory operand
    let magic = k(b, ROUND_MAGIC);
    let kf = b.ins().fsub(shifted, magic);
    let ln2_hi = k(b, LN2_HI);
    let ln2_lo = k(b, LN2_LO);
    let a = b.ins().fmul(kf, ln2_hi);
    let r = b.ins().fsub(x, a);
    let a = b.ins().fmul(kf, ln2_lo);
    let r = b.ins().fsub(r, a);
    let r2 = b.ins().fmul(r, r);
    let r4 = b.ins().fmul(r2, r2);
    let r8 = b.ins().fmul(r4, r4);
    // (c[i] + c[i+1] r) + (c[i+2] + c[i+3] r) r², constants as the second
    // operands (so x86 reads them from memory in the same instruction;
    // a sum or product is the same either way round)
    let quad = |b: &mut FunctionBuilder, i: usize| {
        let c1 = k(b, C[i + 1]);
        let m1 = b.ins().fmul(r, c1);
        let c0 = k(b, C[i]);
        let p = b.ins().fadd(m1, c0);
        let c3 = k(b, C[i + 3]);
        let m3 = b.ins().fmul(r, c3);
        let c2 = k(b, C[i + 2]);
        let q = b.ins().fadd(m3, c2);
        let q = b.ins().fmul(q, r2);
        b.ins().fadd(p, q)
    };
    let q01 = quad(b, 0);
    let q45 = quad(b, 4);
    let q89 = quad(b, 8);
    let m = b.ins().fmul(q45, r4);
    let poly = b.ins().fadd(q01, m);
    let m = b.ins().fmul(q89, r8);
    let poly = b.ins().fadd(poly, m);
    let m = b.ins().fmul(r2, poly);
    let s = b.ins().fadd(r, m);
    let one = k(b, 1.0);
    let er = b.ins().fadd(s, one);
    // 2^k: (bits(shifted) − bits(magic) + 1023) << 52
    let sb = b.ins().bitcast(types::I64, MemFlagsData::new(), shifted);
    let kint = b.ins().iadd_imm_s(sb, -(ROUND_MAGIC.to_bits() as i64));
    let biased = b.ins().iadd_imm_s(kint, 1023);
    let bits = b.ins().ishl_imm_u(biased, 52i64);
    let two_k = b.ins().bitcast(types::F64, MemFlagsData::new(), bits);
    b.ins().fmul(er, two_k)
}

/// A vector constant of two equal lanes (a constant-pool load, or a memory
/// operand of the instruction using it).
fn splat_const(b: &mut FunctionBuilder, ty: types::Type, bits: u64) -> Value {
    let mut bytes = bits.to_le_bytes().to_vec();
    bytes.extend_from_slice(&bits.to_le_bytes());
    let handle = b.func.dfg.constants.insert(bytes.into());
    b.ins().vconst(ty, handle)
}

/// [`emit_exp`] on both lanes of an `f64x2`: the same operations in the same
/// order lane by lane (so the same values), for two independent
/// exponentials at the cost of about one.
fn emit_exp2(b: &mut FunctionBuilder, x0: Value, x1: Value) -> (Value, Value) {
    use revode_model::exp::{INV_FACT as C, LN2_HI, LN2_LO, ROUND_MAGIC};
    let v2 = types::F64X2;
    let k = |b: &mut FunctionBuilder, c: f64| splat_const(b, v2, c.to_bits());
    let x = b.ins().scalar_to_vector(v2, x0);
    let x = b.ins().insertlane(x, x1, 1);
    let flags = MemFlagsData::new();
    // clamp: maxpd, minpd (the bitselect-of-compare forms Cranelift lowers
    // to them; NaN stays NaN as in f64::clamp)
    let lo = k(b, revode_model::exp::EXP_ARG_MIN);
    let below = b.ins().fcmp(FloatCC::LessThan, x, lo);
    let below = b.ins().bitcast(v2, flags, below);
    let x = b.ins().bitselect(below, lo, x);
    let hi = k(b, revode_model::exp::EXP_ARG_MAX);
    let above = b.ins().fcmp(FloatCC::LessThan, hi, x);
    let above = b.ins().bitcast(v2, flags, above);
    let x = b.ins().bitselect(above, hi, x);
    let log2e = k(b, std::f64::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    let magic = k(b, ROUND_MAGIC);
    let shifted = b.ins().fadd(t, magic);
    let magic = k(b, ROUND_MAGIC);
    let kf = b.ins().fsub(shifted, magic);
    let ln2_hi = k(b, LN2_HI);
    let a = b.ins().fmul(kf, ln2_hi);
    let r = b.ins().fsub(x, a);
    let ln2_lo = k(b, LN2_LO);
    let a = b.ins().fmul(kf, ln2_lo);
    let r = b.ins().fsub(r, a);
    let r2 = b.ins().fmul(r, r);
    let r4 = b.ins().fmul(r2, r2);
    let r8 = b.ins().fmul(r4, r4);
    let quad = |b: &mut FunctionBuilder, i: usize| {
        let c1 = k(b, C[i + 1]);
        let m1 = b.ins().fmul(r, c1);
        let c0 = k(b, C[i]);
        let p = b.ins().fadd(m1, c0);
        let c3 = k(b, C[i + 3]);
        let m3 = b.ins().fmul(r, c3);
        let c2 = k(b, C[i + 2]);
        let q = b.ins().fadd(m3, c2);
        let q = b.ins().fmul(q, r2);
        b.ins().fadd(p, q)
    };
    let q01 = quad(b, 0);
    let q45 = quad(b, 4);
    let q89 = quad(b, 8);
    let m = b.ins().fmul(q45, r4);
    let poly = b.ins().fadd(q01, m);
    let m = b.ins().fmul(q89, r8);
    let poly = b.ins().fadd(poly, m);
    let m = b.ins().fmul(r2, poly);
    let s = b.ins().fadd(r, m);
    let one = k(b, 1.0);
    let er = b.ins().fadd(s, one);
    // 2^k: bits(shifted) − bits(magic) + 1023, shifted left by 52 (one
    // wrapping add of the two constants: the same integer)
    let sb = b.ins().bitcast(types::I64X2, flags, shifted);
    let offset = 1023i64.wrapping_sub(ROUND_MAGIC.to_bits() as i64);
    let off = splat_const(b, types::I64X2, offset as u64);
    let biased = b.ins().iadd(sb, off);
    let bits = b.ins().ishl_imm_u(biased, 52i64);
    let two_k = b.ins().bitcast(v2, flags, bits);
    let e = b.ins().fmul(er, two_k);
    (b.ins().extractlane(e, 0), b.ins().extractlane(e, 1))
}

/// `|z| < SERIES_BELOW` as a condition (false for NaN, as in the Rust).
fn emit_series_switch(b: &mut FunctionBuilder, z: Value) -> Value {
    let az = b.ins().fabs(z);
    let below = b.ins().f64const(revode_model::rate_forms::SERIES_BELOW);
    b.ins().fcmp(FloatCC::LessThan, az, below)
}

/// `1 + z²(G2 + z²(G4 + …)) − 0.5 z`, operation for operation as
/// `revode_model::rate_forms::series` (constants second: the same sums and
/// products).
fn emit_series(b: &mut FunctionBuilder, z: Value, z2: Value) -> Value {
    let c = revode_model::rate_forms::SERIES_EVEN;
    let k = b.ins().f64const(c[4]);
    let mut acc = b.ins().fmul(z2, k);
    for &ci in c[..4].iter().rev() {
        let k = b.ins().f64const(ci);
        let s = b.ins().fadd(acc, k);
        acc = b.ins().fmul(z2, s);
    }
    let one = b.ins().f64const(1.0);
    let even = b.ins().fadd(acc, one);
    let half = b.ins().f64const(0.5);
    let hz = b.ins().fmul(z, half);
    b.ins().fsub(even, hz)
}

/// `−0.5 + z(D1 + z²(D3 + …))` as `revode_model::rate_forms::series_deriv`.
fn emit_series_deriv(b: &mut FunctionBuilder, z: Value, z2: Value) -> Value {
    let c = revode_model::rate_forms::SERIES_DERIV_ODD;
    let k = b.ins().f64const(c[4]);
    let mut acc = b.ins().fmul(z2, k);
    for (i, &ci) in c[..4].iter().enumerate().rev() {
        let k = b.ins().f64const(ci);
        let s = b.ins().fadd(acc, k);
        acc = if i == 0 {
            b.ins().fmul(z, s)
        } else {
            b.ins().fmul(z2, s)
        };
    }
    let m = b.ins().f64const(-0.5);
    b.ins().fadd(acc, m)
}

/// Emits `if |z| < SERIES_BELOW { series(…) } else { direct(…) }` as two
/// blocks joined by a third whose parameters (`n` of them) are returned:
/// only one branch runs, as in the Rust (the series is several times the
/// direct form's cost).
fn emit_branches<const N: usize>(
    b: &mut FunctionBuilder,
    z: Value,
    series: impl FnOnce(&mut FunctionBuilder) -> [Value; N],
    direct: impl FnOnce(&mut FunctionBuilder) -> [Value; N],
) -> [Value; N] {
    let small = emit_series_switch(b, z);
    let (series_block, direct_block, join) = (b.create_block(), b.create_block(), b.create_block());
    for _ in 0..N {
        b.append_block_param(join, types::F64);
    }
    b.ins().brif(small, series_block, &[], direct_block, &[]);
    let jump = |b: &mut FunctionBuilder, v: [Value; N]| {
        let args: Vec<BlockArg> = v.iter().map(|&x| BlockArg::Value(x)).collect();
        b.ins().jump(join, &args);
    };
    b.switch_to_block(series_block);
    b.seal_block(series_block);
    let v = series(b);
    jump(b, v);
    b.switch_to_block(direct_block);
    b.seal_block(direct_block);
    let v = direct(b);
    jump(b, v);
    b.switch_to_block(join);
    b.seal_block(join);
    let params = b.block_params(join);
    std::array::from_fn(|i| params[i])
}

/// `g(z)` from `e = e^z`: `revode_model::exprel_inv_em1(z, e − 1)` inlined.
fn emit_exprel(b: &mut FunctionBuilder, z: Value, e: Value) -> Value {
    let [g] = emit_branches(
        b,
        z,
        |b| {
            let z2 = b.ins().fmul(z, z);
            [emit_series(b, z, z2)]
        },
        |b| {
            let one = b.ins().f64const(1.0);
            let em1 = b.ins().fsub(e, one);
            [b.ins().fdiv(z, em1)]
        },
    );
    g
}

/// `(g(z), g'(z))` from `e = e^z`: `exprel_inv_and_deriv_em1(z, e − 1)`
/// inlined (`direct_pair_em1`: `r = 1/em1`, `g = z r`,
/// `g' = r (1 − g (em1 + 1))`).
fn emit_exprel_pair(b: &mut FunctionBuilder, z: Value, e: Value) -> (Value, Value) {
    let [g, dg] = emit_branches(
        b,
        z,
        |b| {
            let z2 = b.ins().fmul(z, z);
            [emit_series(b, z, z2), emit_series_deriv(b, z, z2)]
        },
        |b| {
            let one = b.ins().f64const(1.0);
            let em1 = b.ins().fsub(e, one);
            let one = b.ins().f64const(1.0);
            let r = b.ins().fdiv(one, em1);
            let g = b.ins().fmul(z, r);
            let one = b.ins().f64const(1.0);
            let e1 = b.ins().fadd(em1, one);
            let ge = b.ins().fmul(g, e1);
            let one = b.ins().f64const(1.0);
            let t = b.ins().fsub(one, ge);
            [g, b.ins().fmul(r, t)]
        },
    );
    (g, dg)
}

/// One program's native code: its chunks, run in order.
struct CompiledProgram {
    chunks: Vec<Compiled>,
    /// Calls computing four exponentials at once (two pairs).
    quads: usize,
    /// Input lengths the code reads (states, parameters, seeds), the output
    /// length it writes, and the scratch length it uses.
    needs: [usize; 5],
}

/// Compiled code of several programs, kept alive with its module.
pub struct JitCode {
    module: Option<JITModule>,
    programs: Vec<CompiledProgram>,
}

// SAFETY: after `finalize_definitions` the code memory is immutable and the
// functions only touch the pointers they are given; the module is only
// used again in `drop`, which needs `&mut self`.
unsafe impl Send for JitCode {}
unsafe impl Sync for JitCode {}

impl fmt::Debug for JitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chunks: usize = self.programs.iter().map(|p| p.chunks.len()).sum();
        let quads: usize = self.programs.iter().map(|p| p.quads).sum();
        write!(
            f,
            "JitCode({} programs, {chunks} functions, {quads} four-lane exponential calls)",
            self.programs.len()
        )
    }
}

impl Drop for JitCode {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the function pointers die with `self`; nothing else
            // holds them (they are never handed out).
            unsafe { module.free_memory() };
        }
    }
}

impl JitCode {
    /// Scratch length program `k` needs (0 if it keeps everything in
    /// registers).
    pub fn scratch_len(&self, k: usize) -> usize {
        self.programs[k].needs[4]
    }

    /// Runs program `k`. Panics (never undefined behaviour) if a slice is
    /// shorter than the program reads or writes.
    #[inline]
    pub fn call(
        &self,
        k: usize,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out: &mut [f64],
        scratch: &mut [f64],
    ) {
        let program = &self.programs[k];
        let [nu, np, nl, no, ns] = program.needs;
        assert!(
            u.len() >= nu
                && p.len() >= np
                && lambda.len() >= nl
                && out.len() >= no
                && scratch.len() >= ns,
            "input, output or scratch slice too short for the compiled model"
        );
        for f in &program.chunks {
            f(
                u.as_ptr(),
                p.as_ptr(),
                lambda.as_ptr(),
                t,
                out.as_mut_ptr(),
                scratch.as_mut_ptr(),
            );
        }
    }
}

/// Where each register is used: its last use (instruction index), and the
/// root slots it is stored into.
struct Uses {
    last: Vec<u32>,
    /// `(register, slot)` sorted by register.
    roots: Vec<(u32, u32)>,
}

const NEVER: u32 = u32::MAX;

impl Uses {
    fn of(program: &Program) -> Uses {
        let mut last = vec![NEVER; program.n_registers];
        for (i, ins) in program.instrs.iter().enumerate() {
            for r in crate::program::reads(ins) {
                last[r as usize] = i as u32;
            }
        }
        let mut roots: Vec<(u32, u32)> = program
            .roots
            .iter()
            .enumerate()
            .map(|(k, &r)| (r, k as u32))
            .collect();
        roots.sort_unstable();
        Uses { last, roots }
    }

    fn root_slots(&self, r: u32) -> impl Iterator<Item = u32> + '_ {
        let at = self.roots.partition_point(|&(x, _)| x < r);
        self.roots[at..]
            .iter()
            .take_while(move |&&(x, _)| x == r)
            .map(|&(_, k)| k)
    }
}

/// How a register that is not computed by an instruction gets its value.
#[derive(Clone, Copy)]
enum Source {
    Computed,
    Constant(f64),
    Input(Input),
}

/// Signatures and imported helpers shared by every function.
struct Shared {
    main_sig: cranelift_codegen::ir::Signature,
    pair_id: FuncId,
    un_id: FuncId,
    exp_id: FuncId,
    exp_pair_id: FuncId,
    exp_quad_id: FuncId,
    bin_id: FuncId,
    ptr: types::Type,
}

/// How `exp` is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpCode {
    /// Inline, operation for operation ([`emit_exp`]): 45 Cranelift
    /// instructions each, the fastest code for small models.
    Inline,
    /// A call of `revode_model::exp::exp` (the same result): a third of the
    /// compile time of a large model, and no more host instructions per
    /// call (callgrind).
    Call,
}

/// Compiles the programs, in order; `Err` if the host is not supported.
pub fn compile(programs: &[&Program], exp_code: ExpCode) -> Result<JitCode, String> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| format!("cranelift flag {k}: {e}"))
    };
    set(&mut flags, "opt_level", "none")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "enable_verifier", "false")?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("host not supported by cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    builder.symbol("revode_exprel_pair", exprel_pair_helper as *const u8);
    builder.symbol("revode_unary", unary_helper as *const u8);
    builder.symbol("revode_exp", exp_helper as *const u8);
    builder.symbol("revode_exp_pair", exp_pair_helper as *const u8);
    builder.symbol("revode_exp_quad", exp_quad_helper as *const u8);
    builder.symbol("revode_binary", binary_helper as *const u8);
    let mut module = JITModule::new(builder);
    let ptr = module.target_config().pointer_type();
    let f64t = types::F64;

    let sig = |params: &[types::Type], ret: Option<types::Type>, m: &JITModule| {
        let mut s = m.make_signature();
        s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        s.returns.extend(ret.map(AbiParam::new));
        s
    };
    let pair_sig = sig(&[f64t, f64t, ptr], None, &module);
    let quad_sig = sig(&[f64t, f64t, f64t, f64t, ptr], None, &module);
    let un_sig = sig(&[types::I32, f64t], Some(f64t), &module);
    let exp_sig = sig(&[f64t], Some(f64t), &module);
    let bin_sig = sig(&[types::I32, f64t, f64t], Some(f64t), &module);
    let main_sig = sig(&[ptr, ptr, ptr, f64t, ptr, ptr], None, &module);
    let declare = |m: &mut JITModule, name: &str, s: &cranelift_codegen::ir::Signature| {
        m.declare_function(name, Linkage::Import, s)
            .map_err(|e| e.to_string())
    };
    let shared = Shared {
        pair_id: declare(&mut module, "revode_exprel_pair", &pair_sig)?,
        un_id: declare(&mut module, "revode_unary", &un_sig)?,
        exp_id: declare(&mut module, "revode_exp", &exp_sig)?,
        exp_pair_id: declare(&mut module, "revode_exp_pair", &pair_sig)?,
        exp_quad_id: declare(&mut module, "revode_exp_quad", &quad_sig)?,
        bin_id: declare(&mut module, "revode_binary", &bin_sig)?,
        main_sig,
        ptr,
    };

    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    // `REVODE_JIT_DISASM=1`: print the machine code (examples/ode_dump.rs)
    let disasm = std::env::var_os("REVODE_JIT_DISASM").is_some();
    let mut declared: Vec<(Vec<FuncId>, [usize; 5], usize)> = Vec::new();
    for (k, program) in programs.iter().enumerate() {
        let uses = Uses::of(program);
        let mut sources = vec![Source::Computed; program.n_registers];
        for &(r, x) in &program.constants {
            sources[r as usize] = Source::Constant(x);
        }
        let mut needs = [0usize; 5];
        for &(r, input) in &program.inputs {
            sources[r as usize] = Source::Input(input);
            match input {
                Input::State(i) => needs[0] = needs[0].max(i + 1),
                Input::Param(i) => needs[1] = needs[1].max(i + 1),
                Input::Lambda(i) => needs[2] = needs[2].max(i + 1),
                Input::Time => {}
            }
        }
        needs[3] = program.roots.len();
        let mut emitter = Emitter {
            program,
            uses: &uses,
            sources: &sources,
            cache: vec![(None, 0, 0); program.n_registers],
            uses_scratch: false,
            exp_code,
            defined_at: defined_at(program),
            done: vec![false; program.instrs.len()],
            quads: 0,
        };
        let mut ids = Vec::new();
        let n_chunks = program.instrs.len().div_ceil(CHUNK).max(1);
        for c in 0..n_chunks {
            let id = module
                .declare_function(&format!("program{k}_{c}"), Linkage::Local, &shared.main_sig)
                .map_err(|e| e.to_string())?;
            ctx.func.signature = shared.main_sig.clone();
            ctx.func.name = UserFuncName::user(0, id.as_u32());
            emitter.emit_chunk(&mut module, &mut ctx, &mut fctx, &shared, c)?;
            ctx.set_disasm(disasm);
            module
                .define_function(id, &mut ctx)
                .map_err(|e| format!("cranelift: {e:?}"))?;
            if let Some(text) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
                eprintln!("; program {k}, chunk {c}\n{text}");
            }
            module.clear_context(&mut ctx);
            ids.push(id);
        }
        if emitter.uses_scratch {
            needs[4] = program.n_registers;
        }
        declared.push((ids, needs, emitter.quads));
    }
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let programs = declared
        .into_iter()
        .map(|(ids, needs, quads)| CompiledProgram {
            chunks: ids
                .iter()
                .map(|&id| {
                    let code = module.get_finalized_function(id);
                    // SAFETY: the function was built with `main_sig`, which is
                    // the C calling convention of the host for exactly these
                    // arguments.
                    unsafe { std::mem::transmute::<*const u8, Compiled>(code) }
                })
                .collect(),
            needs,
            quads,
        })
        .collect();
    Ok(JitCode {
        module: Some(module),
        programs,
    })
}

/// Emits a program's chunks, keeping every SSA value's live range within
/// [`WINDOW`] instructions (see the module docs).
struct Emitter<'a> {
    program: &'a Program,
    uses: &'a Uses,
    sources: &'a [Source],
    /// Per register: its current SSA value, the instruction index where it
    /// was materialised, and the chunk (values do not cross functions).
    cache: Vec<(Option<Value>, u32, u32)>,
    uses_scratch: bool,
    exp_code: ExpCode,
    /// Per register: the instruction that computes it ([`NEVER`] for
    /// inputs and constants).
    defined_at: Vec<u32>,
    /// Pairs of exponentials already computed with an earlier pair
    /// (called code: [`Emitter::partner_pair`]).
    done: Vec<bool>,
    quads: usize,
}

/// The function's parameters.
#[derive(Clone, Copy)]
struct Params {
    u: Value,
    p: Value,
    lambda: Value,
    t: Value,
    out: Value,
    scratch: Value,
}

fn chunk_of(i: u32) -> u32 {
    i / CHUNK as u32
}

impl Emitter<'_> {
    /// A computed register must be stored if it is read later than the
    /// window reaches or in another chunk.
    fn must_store(&self, r: u32, at: u32) -> bool {
        let last = self.uses.last[r as usize];
        last != NEVER && (last > at + WINDOW || chunk_of(last) != chunk_of(at))
    }

    /// The next pair of exponentials after instruction `i`, in its chunk
    /// and within [`QUAD_REACH`], whose arguments are computed before `i`:
    /// called code computes it with the pair at `i`, four lanes in one call
    /// (the same values: `exp4` is `exp` lane by lane).
    fn partner_pair(&self, i: usize) -> Option<(usize, [u32; 2], [u32; 2])> {
        let end = (i + 1 + QUAD_REACH)
            .min(self.program.instrs.len())
            .min((chunk_of(i as u32) as usize + 1) * CHUNK);
        let ready = |r: u32| {
            let at = self.defined_at[r as usize];
            at == NEVER || (at as usize) < i
        };
        (i + 1..end).find_map(|j| match self.program.instrs[j] {
            Instr::Exp2 { d, a } if !self.done[j] && ready(a[0]) && ready(a[1]) => Some((j, d, a)),
            _ => None,
        })
    }

    /// The operands of a commutative operation with a constant second.
    fn constant_second(&self, a: u32, b: u32) -> (u32, u32) {
        match self.sources[a as usize] {
            Source::Constant(_) => (b, a),
            _ => (a, b),
        }
    }

    /// The value of register `r` for a use at instruction `at`.
    fn read(&mut self, b: &mut FunctionBuilder, fp: Params, r: u32, at: u32) -> Value {
        if let Source::Constant(x) = self.sources[r as usize] {
            // A constant per use (never kept in a register): x86 reads it
            // from memory in the instruction that uses it.
            return b.ins().f64const(x);
        }
        let (cached, since, chunk) = self.cache[r as usize];
        if let Some(v) = cached {
            if chunk == chunk_of(at) && at - since <= WINDOW {
                return v;
            }
        }
        let flags = MemFlagsData::trusted();
        let load = |b: &mut FunctionBuilder, base: Value, i: usize| {
            b.ins().load(types::F64, flags, base, (8 * i) as i32)
        };
        let v = match self.sources[r as usize] {
            Source::Constant(x) => b.ins().f64const(x),
            Source::Input(Input::State(i)) => load(b, fp.u, i),
            Source::Input(Input::Param(i)) => load(b, fp.p, i),
            Source::Input(Input::Lambda(i)) => load(b, fp.lambda, i),
            Source::Input(Input::Time) => fp.t,
            Source::Computed => load(b, fp.scratch, r as usize),
        };
        self.cache[r as usize] = (Some(v), at, chunk_of(at));
        v
    }

    /// Records a computed register's value: stores it into `scratch` if it
    /// is needed beyond the window and into `out` if it is a root.
    fn define(&mut self, b: &mut FunctionBuilder, fp: Params, r: u32, at: u32, v: Value) {
        let flags = MemFlagsData::trusted();
        self.cache[r as usize] = (Some(v), at, chunk_of(at));
        if self.must_store(r, at) {
            self.uses_scratch = true;
            b.ins().store(flags, v, fp.scratch, (8 * r) as i32);
        }
        for k in self.uses.root_slots(r) {
            b.ins().store(flags, v, fp.out, (8 * k) as i32);
        }
    }

    fn emit_chunk(
        &mut self,
        module: &mut JITModule,
        ctx: &mut cranelift_codegen::Context,
        fctx: &mut FunctionBuilderContext,
        shared: &Shared,
        chunk: usize,
    ) -> Result<(), String> {
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let params = b.block_params(block).to_vec();
        let fp = Params {
            u: params[0],
            p: params[1],
            lambda: params[2],
            t: params[3],
            out: params[4],
            scratch: params[5],
        };
        let pair_f = module.declare_func_in_func(shared.pair_id, b.func);
        let un_f = module.declare_func_in_func(shared.un_id, b.func);
        let exp_f = module.declare_func_in_func(shared.exp_id, b.func);
        let exp_pair_f = module.declare_func_in_func(shared.exp_pair_id, b.func);
        let exp_quad_f = module.declare_func_in_func(shared.exp_quad_id, b.func);
        let bin_f = module.declare_func_in_func(shared.bin_id, b.func);
        let slot =
            b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 32, 3));
        let ptr = shared.ptr;
        let flags = MemFlagsData::trusted();
        if chunk == 0 {
            // Roots that are inputs or constants: stored once, first.
            for &(r, k) in &self.uses.roots {
                if !matches!(self.sources[r as usize], Source::Computed) {
                    let v = self.read(&mut b, fp, r, 0);
                    b.ins().store(flags, v, fp.out, (8 * k) as i32);
                }
            }
        }
        let first = chunk * CHUNK;
        let end = (first + CHUNK).min(self.program.instrs.len());
        for i in first..end {
            if self.done[i] {
                continue;
            }
            let at = i as u32;
            let ins = self.program.instrs[i];
            macro_rules! arg {
                ($r:expr) => {
                    self.read(&mut b, fp, $r, at)
                };
            }
            let (d, x) = match ins {
                // Constants second (a memory operand); the sum and the
                // product are the same either way round.
                Instr::Add { d, a, b: c } => {
                    let (a, c) = self.constant_second(a, c);
                    let (x, y) = (arg!(a), arg!(c));
                    (d, b.ins().fadd(x, y))
                }
                Instr::Sub { d, a, b: c } => {
                    let (x, y) = (arg!(a), arg!(c));
                    (d, b.ins().fsub(x, y))
                }
                Instr::Mul { d, a, b: c } => {
                    let (a, c) = self.constant_second(a, c);
                    let (x, y) = (arg!(a), arg!(c));
                    (d, b.ins().fmul(x, y))
                }
                Instr::Div { d, a, b: c } => {
                    let (x, y) = (arg!(a), arg!(c));
                    (d, b.ins().fdiv(x, y))
                }
                Instr::Neg { d, a } => {
                    let x = arg!(a);
                    (d, b.ins().fneg(x))
                }
                Instr::Exp { d, a } if self.exp_code == ExpCode::Call => {
                    let x = arg!(a);
                    let call = b.ins().call(exp_f, &[x]);
                    (d, b.inst_results(call)[0])
                }
                Instr::Exp { d, a } => {
                    let x = arg!(a);
                    (d, emit_exp(&mut b, x))
                }
                Instr::Exp2 { d, a } if self.exp_code == ExpCode::Call => {
                    if let Some((j, d2, a2)) = self.partner_pair(i) {
                        self.done[j] = true;
                        self.quads += 1;
                        let xs = [arg!(a[0]), arg!(a[1]), arg!(a2[0]), arg!(a2[1])];
                        let e: [Value; 4] = call_into_slot(&mut b, exp_quad_f, &xs, slot, ptr);
                        self.define(&mut b, fp, d[0], at, e[0]);
                        self.define(&mut b, fp, d2[0], at, e[2]);
                        self.define(&mut b, fp, d2[1], at, e[3]);
                        (d[1], e[1])
                    } else {
                        let xs = [arg!(a[0]), arg!(a[1])];
                        let [e0, e1] = call_into_slot(&mut b, exp_pair_f, &xs, slot, ptr);
                        self.define(&mut b, fp, d[0], at, e0);
                        (d[1], e1)
                    }
                }
                Instr::Exp2 { d, a } => {
                    let (x0, x1) = (arg!(a[0]), arg!(a[1]));
                    let (e0, e1) = emit_exp2(&mut b, x0, x1);
                    self.define(&mut b, fp, d[0], at, e0);
                    (d[1], e1)
                }
                Instr::PowI { d, a, n } => {
                    let x = arg!(a);
                    (d, emit_powi(&mut b, x, n))
                }
                Instr::ExprelPair { g, dg, z, e } if self.exp_code == ExpCode::Inline => {
                    let (z, e) = (arg!(z), arg!(e));
                    let (gv, dv) = emit_exprel_pair(&mut b, z, e);
                    self.define(&mut b, fp, g, at, gv);
                    (dg, dv)
                }
                Instr::Bin {
                    op: Bin::ExprelInv,
                    d,
                    a,
                    b: e,
                } if self.exp_code == ExpCode::Inline => {
                    let (z, e) = (arg!(a), arg!(e));
                    (d, emit_exprel(&mut b, z, e))
                }
                Instr::ExprelPair { g, dg, z, e } => {
                    let xs = [arg!(z), arg!(e)];
                    let [gv, dv] = call_into_slot(&mut b, pair_f, &xs, slot, ptr);
                    self.define(&mut b, fp, g, at, gv);
                    (dg, dv)
                }
                Instr::Select { d, c, a, b: e } => {
                    // `c != 0` is true for NaN, as in the interpreter
                    let (cv, x, y) = (arg!(c), arg!(a), arg!(e));
                    let zero = b.ins().f64const(0.0);
                    let cond = b.ins().fcmp(FloatCC::NotEqual, cv, zero);
                    (d, b.ins().select(cond, x, y))
                }
                Instr::Un { op, d, a } => {
                    let x = arg!(a);
                    let code = b.ins().iconst(types::I32, code_of(&UNARY, &op));
                    let call = b.ins().call(un_f, &[code, x]);
                    (d, b.inst_results(call)[0])
                }
                Instr::Bin { op, d, a, b: c } => {
                    let (x, y) = (arg!(a), arg!(c));
                    let code = b.ins().iconst(types::I32, code_of(&BINARY, &op));
                    let call = b.ins().call(bin_f, &[code, x, y]);
                    (d, b.inst_results(call)[0])
                }
            };
            self.define(&mut b, fp, d, at, x);
        }
        b.ins().return_(&[]);
        b.finalize(module.target_config());
        Ok(())
    }
}

/// Calls helper `f` with `args` and the address of `slot`, into which it
/// writes its `N` results, and loads them.
fn call_into_slot<const N: usize>(
    b: &mut FunctionBuilder,
    f: FuncRef,
    args: &[Value],
    slot: StackSlot,
    ptr: types::Type,
) -> [Value; N] {
    let addr = b.ins().stack_addr(ptr, slot, 0);
    let mut operands = args.to_vec();
    operands.push(addr);
    b.ins().call(f, &operands);
    std::array::from_fn(|k| b.ins().stack_load(ptr, types::F64, slot, 8 * k as i32))
}

/// How far ahead [`Emitter::partner_pair`] looks.
const QUAD_REACH: usize = 64;

/// Per register, the instruction that computes it ([`NEVER`]: an input or
/// a constant).
fn defined_at(program: &Program) -> Vec<u32> {
    let mut at = vec![NEVER; program.n_registers];
    for (i, ins) in program.instrs.iter().enumerate() {
        for r in crate::program::writes(ins) {
            at[r as usize] = i as u32;
        }
    }
    at
}

/// `x^n` with the same multiplications as `dag::powi`.
fn emit_powi(b: &mut FunctionBuilder, x: Value, n: i32) -> Value {
    let mut k = n.unsigned_abs();
    let mut base = x;
    let mut acc: Option<Value> = None;
    while k > 0 {
        if k & 1 == 1 {
            acc = Some(match acc {
                None => base,
                Some(a) => b.ins().fmul(a, base),
            });
        }
        k >>= 1;
        if k > 0 {
            base = b.ins().fmul(base, base);
        }
    }
    let mut v = match acc {
        Some(v) => v,
        None => b.ins().f64const(1.0),
    };
    if n < 0 {
        let one = b.ins().f64const(1.0);
        v = b.ins().fdiv(one, v);
    }
    v
}

/// About how many Cranelift instructions `program` becomes (compile time is
/// proportional to it): what [`crate::native`] decides by.
pub fn native_size(program: &Program) -> usize {
    let per_instruction = |ins: &Instr| match *ins {
        // emit_exp, and its operand's load
        Instr::Exp { .. } => 46,
        Instr::Exp2 { .. } => 52,
        Instr::PowI { n, .. } => 3 + 2 * (32 - n.unsigned_abs().leading_zeros() as usize),
        // emit_exprel_pair / emit_exprel, inline in programs compiled at load
        Instr::ExprelPair { .. } => 50,
        Instr::Bin {
            op: Bin::ExprelInv, ..
        } => 25,
        Instr::Select { .. } | Instr::Un { .. } | Instr::Bin { .. } => 5,
        _ => 3,
    };
    program.instrs.iter().map(per_instruction).sum::<usize>() + program.roots.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OdeModel;

    /// Code too large to inline `exp` calls helpers for it: bitwise the
    /// inlined code (itself checked against the interpreter in
    /// tests/backends.rs), for single and paired exponentials and the
    /// exprel form, at ordinary, clamped, infinite and NaN arguments.
    /// Called code computes two independent pairs of exponentials in one
    /// four-lane call: bitwise the inlined pairs (and so the interpreter).
    #[test]
    fn four_called_exponentials_equal_inlined_ones_bitwise() {
        let src = "init x=0, y=0, z=0, w=0\n\
            x' = exp(x/3) + exp(2*y)\n\
            y' = exp(-z) * x\n\
            z' = exp(w/5) - y\n\
            w' = x + y + z\n";
        let model = OdeModel::from_str(src).unwrap();
        let program = model.rhs_program();
        let pairs = program
            .instructions()
            .iter()
            .filter(|i| matches!(i, Instr::Exp2 { .. }))
            .count();
        assert_eq!(pairs, 2);
        let inline = compile(&[program], ExpCode::Inline).unwrap();
        let called = compile(&[program], ExpCode::Call).unwrap();
        assert_eq!(called.programs[0].quads, 1);
        assert_eq!(inline.programs[0].quads, 0);
        let mut scratch = vec![0.0; inline.scratch_len(0).max(called.scratch_len(0))];
        let xs = [0.0, -0.0, 1.5, -20.25, 1e-9, -750.0, 3000.0, f64::NAN];
        for (k, &x) in xs.iter().enumerate() {
            let u = [x, xs[(k + 1) % 8], xs[(k + 3) % 8], xs[(k + 5) % 8]];
            let (mut a, mut b) = ([0.0; 4], [0.0; 4]);
            inline.call(0, 0.0, &u, &[], &[], &mut a, &mut scratch);
            called.call(0, 0.0, &u, &[], &[], &mut b, &mut scratch);
            for c in 0..4 {
                assert!(
                    a[c].to_bits() == b[c].to_bits() || (a[c].is_nan() && b[c].is_nan()),
                    "{u:?} component {c}: inlined {} vs called {}",
                    a[c],
                    b[c]
                );
            }
        }
    }

    #[test]
    fn called_exponentials_equal_inlined_ones_bitwise() {
        let src = "init x=0, y=0\n\
            x' = exp(x) + 3*exp(2*y) + x/(exp(x/3)-1)\n\
            y' = exp(x)*exp(2*y) + exp(-y) + exp(y/7)\n";
        let model = OdeModel::from_str(src).unwrap();
        let program = model.rhs_program();
        let has = |f: fn(&Instr) -> bool| program.instructions().iter().any(f);
        assert!(has(|i| matches!(i, Instr::Exp { .. })));
        assert!(has(|i| matches!(i, Instr::Exp2 { .. })));
        let inline = compile(&[program], ExpCode::Inline).unwrap();
        let called = compile(&[program], ExpCode::Call).unwrap();
        let mut scratch = vec![0.0; inline.scratch_len(0).max(called.scratch_len(0))];
        let xs = [
            0.0,
            -0.0,
            1.5,
            -20.25,
            1e-9,
            709.0f64.next_up(),
            -750.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for &x in &xs {
            for &y in &xs {
                let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
                inline.call(0, 0.0, &[x, y], &[], &[], &mut a, &mut scratch);
                called.call(0, 0.0, &[x, y], &[], &[], &mut b, &mut scratch);
                for k in 0..2 {
                    assert!(
                        a[k].to_bits() == b[k].to_bits() || (a[k].is_nan() && b[k].is_nan()),
                        "({x:e}, {y:e}) component {k}: inlined {} vs called {}",
                        a[k],
                        b[k]
                    );
                }
            }
        }
    }
}
