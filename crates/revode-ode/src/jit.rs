//! Native code for the straight-line programs, through Cranelift.
//!
//! Each [`Program`] becomes one function
//! `f(u, p, λ, t, out)` that loads its inputs, computes every instruction
//! into an SSA value (no register file, no dispatch) and stores the
//! program's roots into `out`. Arithmetic, integer powers and selects are
//! inlined, `exp` too (the same operations as `revode_model::exp::exp`);
//! `g(z)`/`g'(z)` and the rarer operations call the same Rust functions the
//! interpreter uses, so both backends give bitwise equal results (tested in
//! tests/backends.rs).
//!
//! `unsafe` is confined to this module: calling a function pointer that
//! Cranelift produced, and declaring the finished code `Send + Sync`.
#![allow(unsafe_code)]

use std::fmt;

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{
    types, AbiParam, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, UserFuncName, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

use crate::dag::{eval_bin, eval_un, Bin, Un};
use crate::program::{Input, Instr, Program};

/// `f(u, p, λ, t, out)`.
type Compiled = extern "C" fn(*const f64, *const f64, *const f64, f64, *mut f64);

extern "C" fn exprel_pair_helper(z: f64, out: *mut f64) {
    let (g, dg) = revode_model::exprel_inv_and_deriv_em1(z, revode_model::exp::exp(z) - 1.0);
    // SAFETY: `out` is the 16-byte stack slot the generated code passes.
    unsafe {
        *out = g;
        *out.add(1) = dg;
    }
}

const UNARY: [Un; 17] = [
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
    Un::ExprelInv,
    Un::ExprelInvDeriv,
];

const BINARY: [Bin; 15] = [
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
];

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
    let x = b.ins().fmax(x, lo);
    let x = b.ins().fmin(x, hi);
    let log2e = k(b, std::f64::consts::LOG2_E);
    let magic = k(b, ROUND_MAGIC);
    let t = b.ins().fmul(x, log2e);
    let shifted = b.ins().fadd(t, magic);
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
    // (c[i] + c[i+1] r) + (c[i+2] + c[i+3] r) r²
    let quad = |b: &mut FunctionBuilder, i: usize| {
        let c0 = k(b, C[i]);
        let c1 = k(b, C[i + 1]);
        let c2 = k(b, C[i + 2]);
        let c3 = k(b, C[i + 3]);
        let m1 = b.ins().fmul(c1, r);
        let p = b.ins().fadd(c0, m1);
        let m3 = b.ins().fmul(c3, r);
        let q = b.ins().fadd(c2, m3);
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
    let er = b.ins().fadd(one, s);
    // 2^k: (bits(shifted) − bits(magic) + 1023) << 52
    let sb = b.ins().bitcast(types::I64, MemFlagsData::new(), shifted);
    let kint = b.ins().iadd_imm_s(sb, -(ROUND_MAGIC.to_bits() as i64));
    let biased = b.ins().iadd_imm_s(kint, 1023);
    let bits = b.ins().ishl_imm_u(biased, 52i64);
    let two_k = b.ins().bitcast(types::F64, MemFlagsData::new(), bits);
    b.ins().fmul(er, two_k)
}

/// Compiled code of several programs, kept alive with its module.
pub struct JitCode {
    module: Option<JITModule>,
    functions: Vec<Compiled>,
    /// Input lengths the code reads (states, parameters, seeds) and writes.
    needs: Vec<[usize; 4]>,
}

// SAFETY: after `finalize_definitions` the code memory is immutable and the
// functions only touch the pointers they are given; the module is only
// used again in `drop`, which needs `&mut self`.
unsafe impl Send for JitCode {}
unsafe impl Sync for JitCode {}

impl fmt::Debug for JitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JitCode({} functions)", self.functions.len())
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
    /// Runs function `k`. Panics (never undefined behaviour) if a slice is
    /// shorter than the program reads or writes.
    #[inline]
    pub fn call(&self, k: usize, t: f64, u: &[f64], p: &[f64], lambda: &[f64], out: &mut [f64]) {
        let [nu, np, nl, no] = self.needs[k];
        assert!(
            u.len() >= nu && p.len() >= np && lambda.len() >= nl && out.len() >= no,
            "input or output slice too short for the compiled model"
        );
        (self.functions[k])(u.as_ptr(), p.as_ptr(), lambda.as_ptr(), t, out.as_mut_ptr());
    }
}

/// Compiles the programs, in order; `Err` if the host is not supported.
pub fn compile(programs: &[&Program]) -> Result<JitCode, String> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| format!("cranelift flag {k}: {e}"))
    };
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("host not supported by cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    builder.symbol("revode_exprel_pair", exprel_pair_helper as *const u8);
    builder.symbol("revode_unary", unary_helper as *const u8);
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
    let pair_sig = sig(&[f64t, ptr], None, &module);
    let un_sig = sig(&[types::I32, f64t], Some(f64t), &module);
    let bin_sig = sig(&[types::I32, f64t, f64t], Some(f64t), &module);
    let main_sig = sig(&[ptr, ptr, ptr, f64t, ptr], None, &module);
    let declare = |m: &mut JITModule, name: &str, s: &cranelift_codegen::ir::Signature| {
        m.declare_function(name, Linkage::Import, s)
            .map_err(|e| e.to_string())
    };
    let pair_id = declare(&mut module, "revode_exprel_pair", &pair_sig)?;
    let un_id = declare(&mut module, "revode_unary", &un_sig)?;
    let bin_id = declare(&mut module, "revode_binary", &bin_sig)?;

    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids: Vec<FuncId> = Vec::new();
    let mut needs = Vec::new();
    for (k, program) in programs.iter().enumerate() {
        let id = module
            .declare_function(&format!("program{k}"), Linkage::Local, &main_sig)
            .map_err(|e| e.to_string())?;
        ctx.func.signature = main_sig.clone();
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut need = [0usize; 4];
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let block = b.create_block();
            b.append_block_params_for_function_params(block);
            b.switch_to_block(block);
            b.seal_block(block);
            let params = b.block_params(block).to_vec();
            let (pu, pp, pl, pt, pout) = (params[0], params[1], params[2], params[3], params[4]);
            let pair_f = module.declare_func_in_func(pair_id, b.func);
            let un_f = module.declare_func_in_func(un_id, b.func);
            let bin_f = module.declare_func_in_func(bin_id, b.func);
            let slot =
                b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 16, 3));
            let flags = MemFlagsData::trusted();
            let mut reg: Vec<Option<Value>> = vec![None; program.n_registers];
            for &(r, x) in &program.constants {
                reg[r as usize] = Some(b.ins().f64const(x));
            }
            for &(r, input) in &program.inputs {
                let load = |b: &mut FunctionBuilder, base: Value, i: usize| {
                    b.ins().load(f64t, flags, base, (8 * i) as i32)
                };
                reg[r as usize] = Some(match input {
                    Input::State(i) => {
                        need[0] = need[0].max(i + 1);
                        load(&mut b, pu, i)
                    }
                    Input::Param(i) => {
                        need[1] = need[1].max(i + 1);
                        load(&mut b, pp, i)
                    }
                    Input::Lambda(i) => {
                        need[2] = need[2].max(i + 1);
                        load(&mut b, pl, i)
                    }
                    Input::Time => pt,
                });
            }
            let v = |reg: &Vec<Option<Value>>, r: u32| reg[r as usize].expect("defined before use");
            for ins in &program.instrs {
                match *ins {
                    Instr::Add { d, a, b: c } => {
                        let x = b.ins().fadd(v(&reg, a), v(&reg, c));
                        reg[d as usize] = Some(x);
                    }
                    Instr::Sub { d, a, b: c } => {
                        let x = b.ins().fsub(v(&reg, a), v(&reg, c));
                        reg[d as usize] = Some(x);
                    }
                    Instr::Mul { d, a, b: c } => {
                        let x = b.ins().fmul(v(&reg, a), v(&reg, c));
                        reg[d as usize] = Some(x);
                    }
                    Instr::Div { d, a, b: c } => {
                        let x = b.ins().fdiv(v(&reg, a), v(&reg, c));
                        reg[d as usize] = Some(x);
                    }
                    Instr::Neg { d, a } => {
                        let x = b.ins().fneg(v(&reg, a));
                        reg[d as usize] = Some(x);
                    }
                    Instr::Exp { d, a } => {
                        reg[d as usize] = Some(emit_exp(&mut b, v(&reg, a)));
                    }
                    Instr::PowI { d, a, n } => {
                        // the same multiplications as dag::powi
                        let mut k = n.unsigned_abs();
                        let mut base = v(&reg, a);
                        let mut acc: Option<Value> = None;
                        while k > 0 {
                            if k & 1 == 1 {
                                acc = Some(match acc {
                                    None => base,
                                    Some(x) => b.ins().fmul(x, base),
                                });
                            }
                            k >>= 1;
                            if k > 0 {
                                base = b.ins().fmul(base, base);
                            }
                        }
                        let mut x = match acc {
                            Some(x) => x,
                            None => b.ins().f64const(1.0),
                        };
                        if n < 0 {
                            let one = b.ins().f64const(1.0);
                            x = b.ins().fdiv(one, x);
                        }
                        reg[d as usize] = Some(x);
                    }
                    Instr::ExprelPair { g, dg, z } => {
                        let addr = b.ins().stack_addr(ptr, slot, 0);
                        b.ins().call(pair_f, &[v(&reg, z), addr]);
                        reg[g as usize] = Some(b.ins().stack_load(ptr, f64t, slot, 0));
                        reg[dg as usize] = Some(b.ins().stack_load(ptr, f64t, slot, 8));
                    }
                    Instr::Select { d, c, a, b: e } => {
                        // `c != 0` is true for NaN, as in the interpreter
                        let zero = b.ins().f64const(0.0);
                        let cond = b.ins().fcmp(FloatCC::NotEqual, v(&reg, c), zero);
                        let x = b.ins().select(cond, v(&reg, a), v(&reg, e));
                        reg[d as usize] = Some(x);
                    }
                    Instr::Un { op, d, a } => {
                        let code = b.ins().iconst(types::I32, code_of(&UNARY, &op));
                        let call = b.ins().call(un_f, &[code, v(&reg, a)]);
                        reg[d as usize] = Some(b.inst_results(call)[0]);
                    }
                    Instr::Bin { op, d, a, b: c } => {
                        let code = b.ins().iconst(types::I32, code_of(&BINARY, &op));
                        let call = b.ins().call(bin_f, &[code, v(&reg, a), v(&reg, c)]);
                        reg[d as usize] = Some(b.inst_results(call)[0]);
                    }
                }
            }
            for (k, &r) in program.roots.iter().enumerate() {
                b.ins().store(flags, v(&reg, r), pout, (8 * k) as i32);
            }
            need[3] = program.roots.len();
            b.ins().return_(&[]);
            b.finalize(module.target_config());
        }
        module
            .define_function(id, &mut ctx)
            .map_err(|e| format!("cranelift: {e:?}"))?;
        module.clear_context(&mut ctx);
        ids.push(id);
        needs.push(need);
    }
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let functions = ids
        .iter()
        .map(|&id| {
            let code = module.get_finalized_function(id);
            // SAFETY: the function was built with `main_sig`, which is the C
            // calling convention of the host for exactly these arguments.
            unsafe { std::mem::transmute::<*const u8, Compiled>(code) }
        })
        .collect();
    Ok(JitCode {
        module: Some(module),
        functions,
        needs,
    })
}
