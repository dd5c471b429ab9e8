"""Every flag that ``slam COMMAND --help`` lists is proven to change what it says.

``FLAG_TESTS`` maps each flag of each command, taken from the real argparse parser of
``slam_align/cli.py``, to the test (``FILE::NAME`` under tests/) that shows its effect, one
line per flag; a new flag fails this test until its line (and its test) is added. The
few flags no test can check here say so as ``UNTESTED: why`` and are listed in
``UNTESTED_ALLOWED``, so that the list can only shrink.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from slam_align.cli import COMMANDS, build_parser

TESTS = Path(__file__).resolve().parent

FLAG_TESTS = {
    "plan --model": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --method": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --layers": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --modules": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --extras": "test_plan.py::test_full_extras_and_errors",
    "plan --seed": "test_plan.py::test_random_layers_are_seeded_and_distinct",
    "plan --num-random-layers": "test_plan.py::test_random_layers_are_seeded_and_distinct",
    "plan --ffn-pattern": "test_architectures.py::test_unknown_architecture_needs_patterns",
    "plan --attn-pattern": "test_architectures.py::test_unknown_architecture_needs_patterns",
    "plan --lora-r": "test_plan_cli.py::test_plan_tiny_model_dir_yaml_and_lora",
    "plan --lora-alpha": "test_plan.py::test_lora_adapters_only_in_chosen_layers",
    "plan --lora-dropout": "test_plan.py::test_lora_options_reach_the_adapters",
    "plan --json": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --memory": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --gpus": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --micro-batch-size": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --seq-len": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --zero": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --precision": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --gradient-checkpointing": "test_plan_cli.py::test_plan_json_llama2_7b_with_memory",
    "plan --gpu-memory-gib": "test_flag_effects.py::test_plan_gpu_memory_decides_fits",
    "plan --trust-remote-code": "test_plan_cli.py::test_trust_remote_code_loads_a_model_with_its_own_code",
    "data build --output": "test_mixtures.py::test_shared_sample_config_builds_the_slam_mixture",
    "data build --sources": "test_mixtures.py::test_sizes_balance_and_seed",
    "data build --langs": "test_mixtures.py::test_contaminated_rows_are_removed_and_counted",
    "data build --seed": "test_mixtures.py::test_shared_sample_config_builds_the_slam_mixture",
    "data build --balance": "test_mixtures.py::test_sizes_balance_and_seed",
    "data build --dedup": "test_flag_effects.py::test_build_dedup_shuffle_and_description",
    "data build --decontaminate": "test_mixtures.py::test_contaminated_rows_are_removed_and_counted",
    "data build --test-data-dir": "test_mixtures.py::test_shared_sample_config_builds_the_slam_mixture",
    "data build --data-root": "test_mixtures.py::test_slam_mixture_config_with_local_stand_ins",
    "data build --shuffle": "test_flag_effects.py::test_build_dedup_shuffle_and_description",
    "data build --name": "test_mixtures.py::test_contaminated_rows_are_removed_and_counted",
    "data build --description": "test_flag_effects.py::test_build_dedup_shuffle_and_description",
    "data build --overwrite": "test_mixtures.py::test_shared_sample_config_builds_the_slam_mixture",
    "data inspect --file": "test_flag_effects.py::test_inspect_file_n_random_and_tokenizer",
    "data inspect --prompt": "test_mixtures.py::test_inspect_renders_with_the_template",
    "data inspect --n": "test_flag_effects.py::test_inspect_file_n_random_and_tokenizer",
    "data inspect --lang": "test_mixtures.py::test_shared_sample_config_builds_the_slam_mixture",
    "data inspect --kind": "test_mixtures.py::test_shared_sample_config_builds_the_slam_mixture",
    "data inspect --random": "test_flag_effects.py::test_inspect_file_n_random_and_tokenizer",
    "data inspect --seed": "test_mixtures.py::test_shared_sample_config_builds_the_slam_mixture",
    "data inspect --tokenizer": "test_flag_effects.py::test_inspect_file_n_random_and_tokenizer",
    "data inspect --json": "test_mixtures.py::test_inspect_renders_with_the_template",
    "identify --model": "test_identify.py::test_jsonl_benchmark_with_synthetic_languages",
    "identify --output": "test_identify.py::test_jsonl_benchmark_with_synthetic_languages",
    "identify --benchmark": "test_identify.py::test_jsonl_benchmark_with_synthetic_languages",
    "identify --data-dir": "test_identify.py::test_cli_feeds_train_layers",
    "identify --langs": "test_identify.py::test_jsonl_benchmark_with_synthetic_languages",
    "identify --limit": "test_identify.py::test_statistics_match_slow_reference",
    "identify --method": "test_identify.py::test_statistics_match_slow_reference",
    "identify --score": "test_identify.py::test_statistics_match_slow_reference",
    "identify --top-k": "test_identify.py::test_jsonl_benchmark_with_synthetic_languages",
    "identify --contiguous": "test_identify.py::test_run_directory_and_prompt",
    "identify --threshold": "test_identify_stats.py::test_probabilities_match_reference",
    "identify --overlap-top-fraction": "test_identify.py::test_statistics_match_slow_reference",
    "identify --lape-top-rate": "test_identify_stats.py::test_lape_matches_reference",
    "identify --lape-filter-rate": "test_identify_stats.py::test_lape_matches_reference",
    "identify --prompt": "test_identify.py::test_run_directory_and_prompt",
    "identify --batch-size": "test_flag_effects.py::test_identify_threshold_max_length_and_batch_size",
    "identify --max-length": "test_flag_effects.py::test_identify_threshold_max_length_and_batch_size",
    "identify --dtype": "test_identify.py::test_statistics_match_slow_reference",
    "identify --device": "test_xcsqa_e2e.py::test_identify_defaults_to_all_16_languages",
    "identify --ffn-pattern": "test_architectures.py::test_unknown_architecture_needs_patterns",
    "identify --plots": "test_identify.py::test_run_directory_and_prompt",
    "identify --progress": "test_identify.py::test_jsonl_benchmark_with_synthetic_languages",
    "identify --similarity": "test_identify.py::test_similarity_to_english_is_measured_per_layer",
    "identify --overwrite": "test_cli_and_config.py::test_output_dir_is_never_silently_overwritten",
    "train --model": "test_train.py::test_slam_trains_only_selected_tensors",
    "train --output": "test_train.py::test_slam_trains_only_selected_tensors",
    "train --method": "test_train.py::test_slam_trains_only_selected_tensors",
    "train --layers": "test_train.py::test_slam_trains_only_selected_tensors",
    "train --modules": "test_plan.py::test_random_layers_are_seeded_and_distinct",
    "train --extras": "test_plan.py::test_full_extras_and_errors",
    "train --seed": "test_plan.py::test_random_layers_are_seeded_and_distinct",
    "train --num-random-layers": "test_train.py::test_ablations_train_their_plan",
    "train --ffn-pattern": "test_architectures.py::test_unknown_architecture_needs_patterns",
    "train --attn-pattern": "test_architectures.py::test_unknown_architecture_needs_patterns",
    "train --lora-r": "test_plan.py::test_lora_adapters_only_in_chosen_layers",
    "train --lora-alpha": "test_plan.py::test_lora_adapters_only_in_chosen_layers",
    "train --lora-dropout": "test_plan.py::test_lora_options_reach_the_adapters",
    "train --data": "test_train.py::test_existing_output_is_never_overwritten",
    "train --stage1-data": "test_flag_effects.py::test_limit_field_map_and_stage_files_choose_the_training_data",
    "train --stage2-data": "test_train.py::test_two_stage_with_explicit_files_and_weights",
    "train --field-map": "test_flag_effects.py::test_limit_field_map_and_stage_files_choose_the_training_data",
    "train --prompt": "test_train.py::test_slam_trains_only_selected_tensors",
    "train --cutoff-len": "test_train_tokenize.py::test_loss_covers_the_response_only",
    "train --limit": "test_flag_effects.py::test_limit_field_map_and_stage_files_choose_the_training_data",
    "train --max-steps": "test_train.py::test_existing_output_is_never_overwritten",
    "train --num-train-epochs": "test_train_configs.py::test_two_stage_baseline_settings",
    "train --learning-rate": "test_train_configs.py::test_two_stage_baseline_settings",
    "train --lr-scheduler-type": "test_flag_effects.py::test_trainer_arguments_carry_the_optimisation_flags",
    "train --warmup-ratio": "test_train_configs.py::test_two_stage_baseline_settings",
    "train --optim": "test_flag_effects.py::test_trainer_arguments_carry_the_optimisation_flags",
    "train --weight-decay": "test_train.py::test_fused_gate_up_keeps_the_gate_half_bit_exact",
    "train --max-grad-norm": "test_flag_effects.py::test_trainer_arguments_carry_the_optimisation_flags",
    "train --per-device-train-batch-size": "test_flag_effects.py::test_trainer_arguments_carry_the_optimisation_flags",
    "train --gradient-accumulation-steps": "test_flag_effects.py::test_trainer_arguments_carry_the_optimisation_flags",
    "train --effective-batch-size": "test_train_configs.py::test_paper_slam_settings",
    "train --dtype": "test_train.py::test_slam_trains_only_selected_tensors",
    "train --bf16": "test_plan.py::test_memory_llama2_7b_slam_fits_full_does_not",
    "train --gradient-checkpointing": "test_train.py::test_gradient_checkpointing_with_frozen_embeddings_still_trains",
    "train --deepspeed": "test_engines.py::test_impossible_engine_options_are_one_line",
    "train --fsdp": "test_engines.py::test_impossible_engine_options_are_one_line",
    "train --fsdp-config": "test_engines.py::test_impossible_engine_options_are_one_line",
    "train --save-steps": "test_train.py::test_resume_after_kill_gives_the_same_weights",
    "train --save-total-limit": "test_flag_effects.py::test_trainer_arguments_carry_the_optimisation_flags",
    "train --logging-steps": "test_flag_effects.py::test_trainer_arguments_carry_the_optimisation_flags",
    "train --resume": "test_train.py::test_existing_output_is_never_overwritten",
    "train --overwrite": "test_cli_and_config.py::test_output_dir_is_never_silently_overwritten",
    "train --save-delta": "test_flag_effects.py::test_save_delta_decides_the_delta_file",
    "train --progress": "test_train.py::test_layers_auto_from_identify_output",
    "train --packing": "test_train_switches.py::test_packed_run_with_tracking_cache_and_validation",
    "train --group-by-length": "test_train_switches.py::test_group_by_length_batches_similar_lengths",
    "train --tokenized-cache": "test_train_switches.py::test_packed_run_with_tracking_cache_and_validation",
    "train --val-size": "test_train_switches.py::test_packed_run_with_tracking_cache_and_validation",
    "train --eval-steps": "test_train_switches.py::test_packed_run_with_tracking_cache_and_validation",
    "train --report-to": "test_train_switches.py::test_packed_run_with_tracking_cache_and_validation",
    "train --use-liger-kernel": "test_train_switches.py::test_impossible_switches_are_refused_before_anything_is_written",
    "merge --base": "test_train.py::test_delta_merge_round_trips_bit_exactly",
    "merge --delta": "test_train.py::test_delta_merge_round_trips_bit_exactly",
    "merge --output": "test_train.py::test_slam_trains_only_selected_tensors",
    "merge --overwrite": "test_cli_and_config.py::test_output_dir_is_never_silently_overwritten",
    "merge --check-config": "test_train.py::test_delta_merge_round_trips_bit_exactly",
    "eval --model": "test_eval.py::test_rerun_of_a_finished_run_generates_nothing",
    "eval --output": "test_eval.py::test_rerun_of_a_finished_run_generates_nothing",
    "eval --benchmark": "test_eval.py::test_eval_writes_run_directory",
    "eval --langs": "test_eval.py::test_rerun_of_a_finished_run_generates_nothing",
    "eval --data-dir": "test_eval.py::test_rerun_of_a_finished_run_generates_nothing",
    "eval --limit": "test_eval.py::test_rerun_of_a_finished_run_generates_nothing",
    "eval --prompt": "test_protocol.py::test_metrics_record_how_numbers_were_made",
    "eval --cot": "test_eval.py::test_refuses_to_mix_setups",
    "eval --protocol": "test_protocol.py::test_metrics_record_how_numbers_were_made",
    "eval --max-new-tokens": "test_eval.py::test_rerun_of_a_finished_run_generates_nothing",
    "eval --checkpoints": "test_checkpoints.py::test_eval_every_checkpoint_of_a_run",
    "eval --batch-size": "test_eval.py::test_rerun_of_a_finished_run_generates_nothing",
    "eval --backend": "test_eval.py::test_stop_strings_stop_generation",
    "eval --dtype": "test_flag_effects.py::test_eval_dtype_decides_the_weights_dtype",
    "eval --device": "test_xcsqa_e2e.py::test_identify_defaults_to_all_16_languages",
    "eval --tensor-parallel": "UNTESTED: vllm backend only (vllm is not installed here)",
    "eval --bootstrap": "test_eval.py::test_jsonl_benchmark_with_synthetic_languages",
    "eval --seed": "test_score.py::test_score_reproduces_eval_metrics",
    "eval --overwrite": "test_eval.py::test_refuses_to_mix_setups",
    "eval --progress": "test_eval.py::test_resume_after_kill_writes_no_duplicates",
    "score --predictions": "test_score.py::test_score_reproduces_eval_metrics",
    "score --json": "test_score.py::test_score_reproduces_eval_metrics",
    "score --bootstrap": "test_score.py::test_score_reproduces_eval_metrics",
    "score --seed": "test_score.py::test_score_reproduces_eval_metrics",
    "score --output": "test_score.py::test_score_reproduces_eval_metrics",
    "compare --runs": "test_compare.py::test_compare_reads_demo_results_and_reports_errors",
    "compare --output": "test_compare.py::test_compare_two_runs",
    "compare --benchmark": "test_compare.py::test_compare_two_runs",
    "compare --names": "test_compare.py::test_compare_two_runs",
    "compare --metric": "test_checkpoints.py::test_compare_selects_the_best_checkpoint_on_the_held_out_split",
    "compare --select-on": "test_checkpoints.py::test_compare_selects_the_best_checkpoint_on_the_held_out_split",
    "compare --overwrite": "test_cli_and_config.py::test_output_dir_is_never_silently_overwritten",
    "demo --output": "test_demo.py::test_second_run_starts_from_the_cached_base",
    "demo --quick": "test_demo.py::test_quick_demo_writes_the_contract",
    "demo --methods": "test_demo.py::test_quick_demo_writes_the_contract",
    "demo --seed": "test_demo.py::test_quick_demo_writes_the_contract",
    "demo --top-k": "test_demo.py::test_seeds_top_k_and_threads_reach_the_runs",
    "demo --seeds": "test_demo.py::test_seeds_top_k_and_threads_reach_the_runs",
    "demo --cache-dir": "test_demo.py::test_second_run_starts_from_the_cached_base",
    "demo --threads": "test_demo.py::test_seeds_top_k_and_threads_reach_the_runs",
    "demo --overwrite": "test_demo.py::test_existing_output_is_never_overwritten_silently",
    "demo --progress": "test_demo.py::test_second_run_starts_from_the_cached_base",
}

# Flags without a test here (network, vllm, GPU, minutes-long runs): may only shrink.
UNTESTED_ALLOWED = {
    "eval --tensor-parallel",
}


def cli_flags() -> set[str]:
    """``"COMMAND --flag"`` for every option of every command, from the real parser."""
    flags = set()
    for cmd in COMMANDS:
        parser = build_parser(cmd.name.split())
        for part in cmd.name.split():
            (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            parser = subs.choices[part]
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                flags.add(f"{cmd.name} {action.option_strings[0]}")
    return flags


def collected_test_names() -> set[str]:
    """``FILE::NAME`` of every test function under tests/ (parsed, not imported)."""
    names = set()
    for path in TESTS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                names.add(f"{path.name}::{node.name}")
    return names


def test_every_flag_has_a_test_of_its_effect():
    flags = cli_flags()
    assert not sorted(flags - FLAG_TESTS.keys()), (
        f"flags without a FLAG_TESTS line: {sorted(flags - FLAG_TESTS.keys())}"
    )
    assert not sorted(FLAG_TESTS.keys() - flags), (
        f"FLAG_TESTS lines of no flag: {sorted(FLAG_TESTS.keys() - flags)}"
    )
    existing = collected_test_names()
    missing = {k: v for k, v in FLAG_TESTS.items() if not v.startswith("UNTESTED:") and v not in existing}
    assert not missing, f"FLAG_TESTS names tests that do not exist: {missing}"
    untested = {k for k, v in FLAG_TESTS.items() if v.startswith("UNTESTED:")}
    assert untested <= UNTESTED_ALLOWED, f"new untested flags: {sorted(untested - UNTESTED_ALLOWED)}"
