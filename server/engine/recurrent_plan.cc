#include "server/engine/recurrent_plan.h"

#include <algorithm>

namespace rnnserve::engine {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;
using model::Cell;

memory::desc F32(const memory::dims& dims, Tag tag) {
  return memory::desc(dims, Dt::f32, tag);
}

// Wraps host floats without copying; the floats must outlive the memory.
memory Wrap(const memory::desc& desc, const dnnl::engine& engine,
            std::vector<float>& floats) {
  return memory(desc, engine, floats.data());
}

}  // namespace

PlanBuilder::PlanBuilder(const dnnl::engine& engine, const model::Model& model)
    : engine_(engine), config_(model.config) {
  const memory::dim dirs = config_.num_directions();
  const memory::dim hidden = config_.hidden_size;
  const memory::dim gates = model::NumGates(config_.cell);
  const memory::dim bias_gates = LibraryBiasGates(config_.cell);
  for (const LayerGroup& group : PlanLayerGroups(config_)) {
    sources_.push_back({group, ConvertGroupWeights(model, group), {}, {}, {}});
  }
  // The vector no longer grows, so the floats stay where they are.
  for (GroupSource& s : sources_) {
    const memory::dim layers = s.group.num_layers;
    s.weights_layer =
        Wrap(F32({layers, dirs, s.group.input_size, gates, hidden}, Tag::ldgoi),
             engine_, s.host.weights_layer);
    s.weights_iter =
        Wrap(F32({layers, dirs, hidden, gates, hidden}, Tag::ldgoi), engine_,
             s.host.weights_iter);
    s.bias = Wrap(F32({layers, dirs, bias_gates, hidden}, Tag::ldgo), engine_,
                  s.host.bias);
  }
}

std::shared_ptr<const Plan> PlanBuilder::Build(int steps, int batch) {
  auto plan = std::make_shared<Plan>();
  plan->steps = steps;
  plan->batch = batch;
  for (const GroupSource& source : sources_) {
    plan->groups.push_back(BuildGroup(source, steps, batch));
    plan->scratchpad_bytes = std::max(
        plan->scratchpad_bytes, plan->groups.back().scratchpad.get_size());
  }
  return plan;
}

GroupPrimitive PlanBuilder::BuildGroup(const GroupSource& source, int steps,
                                       int batch) {
  const memory::dim dirs = config_.num_directions();
  const memory::dim hidden = config_.hidden_size;
  const memory::dim gates = model::NumGates(config_.cell);
  const memory::dim layers = source.group.num_layers;
  const memory::dim input = source.group.input_size;

  GroupPrimitive out;
  out.src_layer = F32({steps, batch, input}, Tag::tnc);
  out.dst_layer = F32({steps, batch, dirs * hidden}, Tag::tnc);
  out.state = F32({layers, dirs, batch, hidden}, Tag::ldnc);
  const memory::desc weights_layer =
      F32({layers, dirs, input, gates, hidden}, Tag::any);
  const memory::desc weights_iter =
      F32({layers, dirs, hidden, gates, hidden}, Tag::any);
  const memory::desc bias = source.bias.get_desc();

  const auto direction = dirs == 2
                             ? dnnl::rnn_direction::bidirectional_concat
                             : dnnl::rnn_direction::unidirectional_left2right;
  const auto prop = dnnl::prop_kind::forward_inference;
  dnnl::primitive_attr attr;
  // A scratchpad per call, not per thread, lets any thread run the plan.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

  // The three cells differ only in how the descriptor is made.
  auto finish = [&](const auto& pd, auto make) {
    out.scratchpad = pd.scratchpad_desc();
    out.weights_layer = InLayout(source.weights_layer, pd.weights_layer_desc());
    out.weights_iter = InLayout(source.weights_iter, pd.weights_iter_desc());
    out.bias = InLayout(source.bias, pd.bias_desc());
    out.primitive = make(pd);
    ++primitives_created_;
  };
  switch (config_.cell) {
    case Cell::kLstm: {
      dnnl::lstm_forward::desc d(prop, direction, out.src_layer, out.state,
                                 out.state, weights_layer, weights_iter, bias,
                                 out.dst_layer, out.state, out.state);
      finish(dnnl::lstm_forward::primitive_desc(d, attr, engine_),
             [](const auto& pd) { return dnnl::lstm_forward(pd); });
      break;
    }
    case Cell::kGru: {
      dnnl::lbr_gru_forward::desc d(prop, direction, out.src_layer, out.state,
                                    weights_layer, weights_iter, bias,
                                    out.dst_layer, out.state);
      finish(dnnl::lbr_gru_forward::primitive_desc(d, attr, engine_),
             [](const auto& pd) { return dnnl::lbr_gru_forward(pd); });
      break;
    }
    case Cell::kRnnTanh:
    case Cell::kRnnRelu: {
      const auto activation = config_.cell == Cell::kRnnTanh
                                  ? dnnl::algorithm::eltwise_tanh
                                  : dnnl::algorithm::eltwise_relu;
      dnnl::vanilla_rnn_forward::desc d(
          prop, activation, direction, out.src_layer, out.state, weights_layer,
          weights_iter, bias, out.dst_layer, out.state);
      finish(dnnl::vanilla_rnn_forward::primitive_desc(d, attr, engine_),
             [](const auto& pd) { return dnnl::vanilla_rnn_forward(pd); });
      break;
    }
  }
  return out;
}

memory PlanBuilder::InLayout(const memory& source, const memory::desc& want) {
  if (source.get_desc() == want) return source;
  const std::pair<const void*, memory::desc> key(source.get_data_handle(),
                                                 want);
  absl::MutexLock lock(&mu_);
  for (const auto& [k, reordered] : reordered_) {
    if (k.first == key.first && k.second == key.second) return reordered;
  }
  memory from = source;
  memory reordered(want, engine_);
  dnnl::stream stream(engine_);
  dnnl::reorder(from, reordered).execute(stream, from, reordered);
  stream.wait();
  ++weight_reorders_;
  reordered_.push_back({key, reordered});
  return reordered;
}

}  // namespace rnnserve::engine
