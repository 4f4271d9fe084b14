//! Models written in Rust, given a problem-file name at run time.
//!
//! Problem files and the CLI know the built-in models and model files. A
//! program that links revode can add its own [`Model`] types with
//! [`register_model`]: from then on, in that process,
//! `{"model": {"name": NAME}}` runs it and `revode_cli`'s commands (in a
//! binary that calls [`register_model`] and then `revode_cli::main`) accept
//! it, `check-model NAME` included.
//!
//! The model is used through one dynamic call per `rhs`/`vjp` and a `Work`
//! boxed once per solve ([`CustomModel`]), so nothing is allocated per step.
//!
//! This is also how the tests see `revode check` fail: the test-only model
//! with a deliberately wrong VJP lives in the dev-only `revode-testing`
//! crate and is registered by a test build of the CLI (`revode-test-cli`),
//! never by the `revode` binary, which therefore never contains it.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

use revode_model::{Dims, Model, SparsityPattern};

use crate::Error;

/// A registered model: any [`Model`] behind one vtable, its `Work` boxed.
#[derive(Clone)]
pub struct CustomModel {
    inner: Arc<dyn ErasedModel>,
}

impl CustomModel {
    pub fn new<M>(model: M) -> Self
    where
        M: Model + 'static,
        M::Work: 'static,
    {
        CustomModel {
            inner: Arc::new(model),
        }
    }
}

impl fmt::Debug for CustomModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomModel({:?})", self.inner.name())
    }
}

/// Two handles are equal when they are the same registered model.
impl PartialEq for CustomModel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// The names registered so far, in order.
static REGISTRY: Mutex<Vec<CustomModel>> = Mutex::new(Vec::new());

/// Names a problem file cannot give to a registered model.
const RESERVED: [&str; 2] = ["hh", "hh_network"];

/// Makes `model` known to problem files under [`Model::name`]. Refuses a
/// built-in name, a name ending in `.ode` (a model file) and a name already
/// registered.
pub fn register_model<M>(model: M) -> Result<(), Error>
where
    M: Model + 'static,
    M::Work: 'static,
{
    let model = CustomModel::new(model);
    let name = Model::name(&model).to_string();
    let refuse = |why: &str| {
        Err(Error::Invalid {
            origin: "register_model".into(),
            message: format!("cannot register a model named {name:?}: {why}"),
        })
    };
    if RESERVED.contains(&name.as_str()) {
        return refuse("that is a built-in model");
    }
    if name.ends_with(".ode") || name.is_empty() {
        return refuse("not a model name");
    }
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if registry.iter().any(|m| Model::name(m) == name) {
        return refuse("already registered");
    }
    registry.push(model);
    Ok(())
}

/// The registered model called `name`, if any.
pub fn registered(name: &str) -> Option<CustomModel> {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry.iter().find(|m| Model::name(*m) == name).cloned()
}

/// [`Model`] with the `Work` type erased, so it fits behind `dyn`.
trait ErasedModel: Send + Sync {
    fn name(&self) -> &str;
    fn dims(&self) -> Dims;
    fn state_names(&self) -> Vec<String>;
    fn param_names(&self) -> Vec<String>;
    fn default_u0(&self) -> Vec<f64>;
    fn default_params(&self) -> Vec<f64>;
    fn new_work(&self) -> Box<dyn Any + Send>;
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut dyn Any);
    #[allow(clippy::too_many_arguments)]
    fn vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        alpha: f64,
        acc_p: &mut [f64],
        work: &mut dyn Any,
    );
    fn flush_vjp(&self, acc_p: &mut [f64], work: &mut dyn Any);
    fn jacobian_pattern(&self) -> Option<SparsityPattern>;
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], values: &mut [f64], work: &mut dyn Any);
    fn aux_names(&self) -> Vec<String>;
    fn aux(&self, t: f64, u: &[f64], p: &[f64], out: &mut [f64]);
    fn n_events(&self) -> usize;
    fn event_direction(&self, e: usize) -> i8;
    fn event_value(&self, e: usize, u: &[f64], p: &[f64], work: &mut dyn Any) -> f64;
    #[allow(clippy::too_many_arguments)]
    fn event_gradient(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        work: &mut dyn Any,
    );
    fn event_reset(&self, e: usize, u: &[f64], p: &[f64], out: &mut [f64], work: &mut dyn Any);
    #[allow(clippy::too_many_arguments)]
    fn event_reset_vjp(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        acc_p: &mut [f64],
        work: &mut dyn Any,
    );
}

/// The `Work` a [`CustomModel`] made for `M`; any other is a caller's bug
/// (works never travel between models).
fn work_of<M: Model>(work: &mut dyn Any) -> &mut M::Work
where
    M::Work: 'static,
{
    work.downcast_mut::<M::Work>()
        .expect("a CustomModel gets back the Work it made")
}

impl<M> ErasedModel for M
where
    M: Model,
    M::Work: 'static,
{
    fn name(&self) -> &str {
        Model::name(self)
    }
    fn dims(&self) -> Dims {
        Model::dims(self)
    }
    fn state_names(&self) -> Vec<String> {
        Model::state_names(self)
    }
    fn param_names(&self) -> Vec<String> {
        Model::param_names(self)
    }
    fn default_u0(&self) -> Vec<f64> {
        Model::default_u0(self)
    }
    fn default_params(&self) -> Vec<f64> {
        Model::default_params(self)
    }
    fn new_work(&self) -> Box<dyn Any + Send> {
        Box::new(Model::new_work(self))
    }
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut dyn Any) {
        Model::rhs(self, t, u, p, du, work_of::<M>(work))
    }
    fn vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        alpha: f64,
        acc_p: &mut [f64],
        work: &mut dyn Any,
    ) {
        Model::vjp(
            self,
            t,
            u,
            p,
            lambda,
            out_u,
            alpha,
            acc_p,
            work_of::<M>(work),
        )
    }
    fn flush_vjp(&self, acc_p: &mut [f64], work: &mut dyn Any) {
        Model::flush_vjp(self, acc_p, work_of::<M>(work))
    }
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        Model::jacobian_pattern(self)
    }
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], values: &mut [f64], work: &mut dyn Any) {
        Model::jacobian(self, t, u, p, values, work_of::<M>(work))
    }
    fn aux_names(&self) -> Vec<String> {
        Model::aux_names(self)
    }
    fn aux(&self, t: f64, u: &[f64], p: &[f64], out: &mut [f64]) {
        Model::aux(self, t, u, p, out)
    }
    fn n_events(&self) -> usize {
        Model::n_events(self)
    }
    fn event_direction(&self, e: usize) -> i8 {
        Model::event_direction(self, e)
    }
    fn event_value(&self, e: usize, u: &[f64], p: &[f64], work: &mut dyn Any) -> f64 {
        Model::event_value(self, e, u, p, work_of::<M>(work))
    }
    fn event_gradient(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        work: &mut dyn Any,
    ) {
        Model::event_gradient(self, e, u, p, du, dp, work_of::<M>(work))
    }
    fn event_reset(&self, e: usize, u: &[f64], p: &[f64], out: &mut [f64], work: &mut dyn Any) {
        Model::event_reset(self, e, u, p, out, work_of::<M>(work))
    }
    fn event_reset_vjp(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        acc_p: &mut [f64],
        work: &mut dyn Any,
    ) {
        Model::event_reset_vjp(self, e, u, p, lambda, out_u, acc_p, work_of::<M>(work))
    }
}

impl Model for CustomModel {
    type Work = Box<dyn Any + Send>;

    fn name(&self) -> &str {
        self.inner.name()
    }
    fn dims(&self) -> Dims {
        self.inner.dims()
    }
    fn state_names(&self) -> Vec<String> {
        self.inner.state_names()
    }
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }
    fn default_u0(&self) -> Vec<f64> {
        self.inner.default_u0()
    }
    fn default_params(&self) -> Vec<f64> {
        self.inner.default_params()
    }
    fn new_work(&self) -> Self::Work {
        self.inner.new_work()
    }
    fn rhs(&self, t: f64, u: &[f64], p: &[f64], du: &mut [f64], work: &mut Self::Work) {
        self.inner.rhs(t, u, p, du, work.as_mut())
    }
    fn vjp(
        &self,
        t: f64,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        alpha: f64,
        acc_p: &mut [f64],
        work: &mut Self::Work,
    ) {
        self.inner
            .vjp(t, u, p, lambda, out_u, alpha, acc_p, work.as_mut())
    }
    fn flush_vjp(&self, acc_p: &mut [f64], work: &mut Self::Work) {
        self.inner.flush_vjp(acc_p, work.as_mut())
    }
    fn jacobian_pattern(&self) -> Option<SparsityPattern> {
        self.inner.jacobian_pattern()
    }
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], values: &mut [f64], work: &mut Self::Work) {
        self.inner.jacobian(t, u, p, values, work.as_mut())
    }
    fn aux_names(&self) -> Vec<String> {
        self.inner.aux_names()
    }
    fn aux(&self, t: f64, u: &[f64], p: &[f64], out: &mut [f64]) {
        self.inner.aux(t, u, p, out)
    }
    fn n_events(&self) -> usize {
        self.inner.n_events()
    }
    fn event_direction(&self, e: usize) -> i8 {
        self.inner.event_direction(e)
    }
    fn event_value(&self, e: usize, u: &[f64], p: &[f64], work: &mut Self::Work) -> f64 {
        self.inner.event_value(e, u, p, work.as_mut())
    }
    fn event_gradient(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        work: &mut Self::Work,
    ) {
        self.inner.event_gradient(e, u, p, du, dp, work.as_mut())
    }
    fn event_reset(&self, e: usize, u: &[f64], p: &[f64], out: &mut [f64], work: &mut Self::Work) {
        self.inner.event_reset(e, u, p, out, work.as_mut())
    }
    fn event_reset_vjp(
        &self,
        e: usize,
        u: &[f64],
        p: &[f64],
        lambda: &[f64],
        out_u: &mut [f64],
        acc_p: &mut [f64],
        work: &mut Self::Work,
    ) {
        self.inner
            .event_reset_vjp(e, u, p, lambda, out_u, acc_p, work.as_mut())
    }
}
