import dataclasses
import re
from pathlib import Path

import pytest

from feeds import config, settings
from feeds.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def errors(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    return [str(p) for p in info.value.problems]


BASICS = "site: {title: T, base_url: 'https://x.org/feeds'}\n"


def test_the_shipped_config_is_valid():
    cfg = config.load(ROOT / "config.yaml")
    assert cfg.feeds.items == 50
    assert cfg.site.base_url.endswith("/")


def test_defaults_fill_what_the_file_leaves_out(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(BASICS)
    cfg = config.load(path)
    assert cfg.site.base_url == "https://x.org/feeds/"
    assert cfg.quality.missing == "include"
    assert cfg.feeds.formats == ("rss", "atom", "json")
    assert cfg.websub.hub is None
    assert cfg.site_link == "https://x.org/feeds/"
    assert cfg.articles_folder == tmp_path / "seeds"


def test_a_wrong_type_names_the_key_and_value(tmp_path):
    assert errors(BASICS + "quality: {min: high}\n", tmp_path) == [
        f"{tmp_path / 'config.yaml'}: quality.min: expected a number, got 'high'"
    ]


def test_every_problem_is_reported_at_once(tmp_path):
    found = errors(
        "site: {title: '', base_url: 'ftp://x'}\n"
        "quality: {min: true, missing: maybe, topics: {AI: lots}}\n"
        "feeds: {items: 0, formats: [rss, pdf], topics: {enabled: 'yes'}}\n"
        "extra: 1\n",
        tmp_path,
    )
    keys = [re.match(r".*?config\.yaml: ([\w.]+):", line).group(1) for line in found]
    assert keys == [
        "site.title",
        "site.base_url",
        "quality.min",
        "quality.missing",
        "quality.topics",
        "feeds.items",
        "feeds.formats",
        "feeds.topics.enabled",
        "extra",
    ]
    assert any("quality.topics: AI: expected a number, got 'lots'" in line for line in found)


def test_unknown_keys_are_errors_with_a_hint(tmp_path):
    (line,) = errors(BASICS + "quality: {minimum: 3}\n", tmp_path)
    assert "quality.minimum: unknown setting" in line
    (line,) = errors(BASICS + "min: 3\n", tmp_path)
    assert "did you mean quality.min?" in line


def test_a_misspelt_key_is_told_the_nearest_known_one(tmp_path):
    lines = errors(BASICS.replace("title:", "tittle:"), tmp_path)
    assert any(
        line.endswith("site.tittle: unknown setting (did you mean site.title?)") for line in lines
    )
    (line,) = errors(BASICS + "feeds: {topic: {enabled: false}}\n", tmp_path)
    assert "did you mean feeds.topics?" in line
    (line,) = errors(BASICS + "zebra: 3\n", tmp_path)
    assert line.endswith("zebra: unknown setting")  # nothing near: no guess


def test_required_settings(tmp_path):
    assert [e.split(": ", 1)[1] for e in errors("site: {}\n", tmp_path)] == [
        "site.title: required setting is missing",
        "site.base_url: required setting is missing",
    ]


def test_base_url_must_be_absolute(tmp_path):
    (line,) = errors("site: {title: T, base_url: /feeds/}\n", tmp_path)
    assert "site.base_url: expected an absolute http(s) URL" in line


def test_broken_yaml_gives_the_line(tmp_path):
    (line,) = errors(BASICS + "quality:\n  min: [1\n", tmp_path)
    assert re.search(r"config\.yaml:\d+: invalid YAML", line)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.yaml")


def test_overrides_are_keyed_by_slug_and_domain(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        BASICS + "quality: {topics: {AI in Healthcare: 3}, providers: {WWW.CNN.com: 4}}\n"
    )
    cfg = config.load(path)
    assert dict(cfg.quality.topics) == {"ai-in-healthcare": 3}
    assert dict(cfg.quality.providers) == {"cnn.com": 4}


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [s.key for s in settings.SETTINGS if f"`{s.key}`" not in readme]
    assert missing == []


def test_every_setting_is_one_typed_attribute_and_every_attribute_a_setting():
    """config.feeds.items, not config["feeds.items"]: each row of SETTINGS is reached by
    the same dotted path of attributes, with its value, and the sections hold nothing else
    (a field without a row would never be validated)."""
    cfg = config.load(ROOT / "config.yaml")
    for setting in settings.SETTINGS:
        value = cfg
        for name in setting.key.split("."):
            value = getattr(value, name)
        assert not dataclasses.is_dataclass(value), setting.key

    def leaves(section, prefix=""):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                yield from leaves(value, f"{prefix}{f.name}.")
            elif f.name != "path":
                yield f"{prefix}{f.name}"

    assert sorted(leaves(cfg)) == sorted(s.key for s in settings.SETTINGS)


def test_a_setting_reads_as_given_and_defaults_fill_the_rest(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "site: {title: T, base_url: 'https://x.example'}\n"
        "feeds: {items: 7, providers: {min_articles: 3, exclude: [WWW.Example.com]}}\n"
    )
    cfg = config.load(path)
    assert cfg.feeds.items == 7
    assert cfg.feeds.providers.min_articles == 3
    assert cfg.feeds.providers.exclude == ("example.com",)
    assert cfg.feeds.topics.enabled is True
    assert cfg.site.base_url == "https://x.example/"
    assert cfg.site_link == "https://x.example/"
    assert cfg.articles_folder == tmp_path / "seeds"
