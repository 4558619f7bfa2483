"""Sharding the student over the processes with PyTorch FSDP2 (`fully_shard`), on GPUs (NCCL) and on CPUs (gloo).

Each process keeps a 1/N slice of every student weight, of its gradient and of its AdamW state; a layer's whole
weights are gathered for its forward and backward and freed after. The teacher is not sharded: it runs forward only.

The lab applies `fully_shard` itself rather than through `Accelerator.prepare`: one path for CPU and GPU (Accelerate
runs an FSDP config as plain DDP on CPU), and tied weights kept in one group (BERT's word embeddings and MLM decoder,
and the decoder's bias with the head's, which Accelerate's embedding carving places in two groups, an error in
torch >= 2.13). Units: one per transformer layer, then the root (embeddings, head and any projection).

Checkpoints stay in the unsharded format (`module.state_dict()`, `optimizer.state_dict()`), so a run saved with
--fsdp resumes without it and the other way round, and `final/` loads with `from_pretrained`.
Source: PyTorch FSDP2 (torch.distributed.fsdp.fully_shard) and torch.distributed.checkpoint.state_dict.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard

LAYER_LISTS = ("layer", "layers")  # encoder.layer (BERT), transformer.layer (DistilBERT)


def transformer_layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of every encoder inside `module`: the elements of ModuleLists named layer/layers."""
    found = []
    for name, child in module.named_modules():
        if isinstance(child, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] in LAYER_LISTS:
            found.extend(child)
    return found


def shard(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Shard `module` in place over every process of the default process group: each transformer layer one FSDP
    unit, the rest (embeddings, tied MLM head, projections) the root unit. Call after moving the module to `device`
    and before building its optimizer (the parameters become DTensors). Returns the same module.

    Raises ValueError when torch.distributed is not initialised or the module has no transformer layers."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("--fsdp needs several processes: start the run with `accelerate launch --num_processes N`.")
    layers = transformer_layers(module)
    if not layers:
        raise ValueError(f"--fsdp found no transformer layers to shard in {type(module).__name__}.")
    mesh = init_device_mesh(device.type, (dist.get_world_size(),), mesh_dim_names=("dp_shard",))
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(module, mesh=mesh)
    # Fix the root now (torch does it at the first forward): the evaluations run the encoder's layers before any
    # forward of the whole student, and the first unit to run would otherwise become a root of its own.
    module._get_fsdp_state()._lazy_init()
    return module


@contextmanager
def root_gathered(module: torch.nn.Module) -> Iterator[None]:
    """Within the block, the root unit's weights (embeddings, MLM head) are whole on every process, so code that
    calls the student's parts directly (its encoder, then its head, as the evaluations do) sees plain tensors; each
    layer still gathers its own weights when it runs. A collective on a sharded module, nothing on another one."""
    if not isinstance(module, FSDPModule):
        yield
        return
    module.unshard()
    try:
        yield
    finally:
        module.reshard()


def _names_by_group(optimizer: torch.optim.Optimizer, module: torch.nn.Module) -> list[list[str]]:
    """Each parameter group's parameter names, in the optimizer's order (the unsharded format numbers them so)."""
    name_of = {id(p): n for n, p in module.named_parameters()}
    return [[name_of[id(p)] for p in group["params"]] for group in optimizer.param_groups]


def full_state(module: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
               everywhere: bool = False) -> tuple[dict, dict | None]:
    """(model state dict, optimizer state dict) of a sharded module, whole and on the CPU, in the unsharded format
    (`module.state_dict()`, `optimizer.state_dict()` of the same module unsharded). A collective: every process
    calls it. The main process gets the dicts; the others get empty ones unless `everywhere`."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=not everywhere)
    model_state = get_model_state_dict(module, options=options)
    if everywhere:
        model_state = {k: v.cpu() for k, v in model_state.items()}
    if optimizer is None:
        return model_state, None
    by_name = get_optimizer_state_dict(module, optimizer, options=options)
    if not by_name:
        return model_state, {}
    # parameters are numbered 0, 1, ... over the groups in order, as torch.optim.Optimizer.state_dict() does
    groups, state, number = [], {}, 0
    for group, names in zip(by_name["param_groups"], _names_by_group(optimizer, module)):
        ids = list(range(number, number + len(names)))
        for index, name in zip(ids, names):
            if name in by_name["state"]:
                state[index] = by_name["state"][name]
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        number += len(names)
    return model_state, {"state": state, "param_groups": groups}


def load_full_state(module: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                    optimizer_state: dict) -> None:
    """Load whole state dicts in the unsharded format (as full_state returns them, or from a run saved without
    --fsdp) into a sharded module and its optimizer; each process keeps its slice. A collective; every process
    passes the same whole dicts."""
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(module, model_state, options=options)
    state, groups = {}, []
    for group, names in zip(optimizer_state["param_groups"], _names_by_group(optimizer, module)):
        for index, name in zip(group["params"], names):
            if index in optimizer_state["state"]:
                state[name] = optimizer_state["state"][index]
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": names})
    set_optimizer_state_dict(module, optimizer, {"state": state, "param_groups": groups}, options=options)


def submodule_state(state: dict, module: torch.nn.Module, inner: torch.nn.Module) -> dict:
    """The entries of `module`'s state dict that belong to its submodule `inner`, with `inner`'s own key names, each
    tied weight once (under its first name, as `save_pretrained` writes it; a gathered copy shares nothing)."""
    if inner is not module:
        prefix = next(name for name, child in module.named_modules() if child is inner) + "."
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    first_name, copies = {}, set()
    for name, parameter in inner.named_parameters(remove_duplicate=False):
        if first_name.setdefault(id(parameter), name) != name:
            copies.add(name)
    return {k: v for k, v in state.items() if k not in copies}
