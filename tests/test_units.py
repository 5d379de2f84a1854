"""Unit extraction on real-style Shopee titles (Indonesian and English), and the pair flags."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from common.text import clean_titles
from features.units import extract_quantities

INCH = 25.4
# (title, {family: {values in base units}}); base units: g, ml, mm, pieces, MB, W, mAh;
# clothing sizes: xs 2, s 3, m 4, l 5, xl 6, xxl 7; numeric sizes as size + 100.
CASES = [
    ("Minyak Kayu Putih Cap Lang Caplang 210ml 120ml 60ml 30ml", {"volume": {210, 120, 60, 30}}),
    ("Goldenfil selai 1 kg", {"weight": {1000}}),
    ("Cream HN Original 15gr", {"weight": {15}}),
    ("Garnier Sakura White Clay Mask 2 x 6 ml [ Untuk Kulit Glowing ]", {"volume": {6}}),
    ("Kerupuk seblak 500gr", {"weight": {500}}),
    ("SHAMPOO FOLLOW ME GREEN TEA 650ML/SHAMPO FOLOLLOW ME", {"volume": {650}}),
    ("Acnes Natural Care Oil Control Toner 110ml", {"volume": {110}}),
    ("PAKET FULLSET RINGLIGH26CM/30CM+HPHOLDER+TRIPOD", {"length": {260, 300}}),
    ("Bandana Mandi Make Up 6cm FS0106 / Bandana Masker", {"length": {60}}),
    ("Evangeline Eau De Parfum Taurus 50ml", {"volume": {50}}),
    ("ring basket double untuk bola basket Size 7", {"size": {107}}),
    ("[BPOM] FREEMAN MASK ALL VARIANT ( FULL SIZE / 175ml )", {"volume": {175}}),
    ("Klairs Supple Preparation Facial Toner Travel Size (30ml)", {"volume": {30}}),
    ("PIGEON Dot Slim Neck Size L Isi 2 Pcs | Dot Bayi", {"size": {5}, "pieces": {2}}),
    ("Cuanki tahu isi 50 pcs merk mulki. Renyah, gurih lezat cuanki tahu isi 50pc.",
     {"pieces": {50}}),
    ("SARIMI ISI 2 MIE GORENG  RASA AYAM KECAP 126g", {"pieces": {2}, "weight": {126}}),
    ("Air Mineral Prima 330ml Isi 24 Pcs", {"volume": {330}, "pieces": {24}}),
    ("CUP KERTAS 5.5 ISI 200LBR - CUP COKELAT - PAPER CUP", {"pieces": {200}}),
    ("6 pc PIPO Lakban murah 60 yard 2 inch isi 6 Pcs", {"pieces": {6}, "length": {2 * INCH}}),
    ("WS882 Sarung Tangan Plastik Higienis isi 100PCS", {"pieces": {100}}),
    ("Kinoki Koyo Detox Gold 1 box isi 10 pcs Koyo Kinoki Original", {"pieces": {10}}),
    ("Nacific Daily | Crush Mood Lip Cream 4.5g", {"weight": {4.5}}),
    ("Sepatu Clipper Cukuran Ukuran no 1,5 ( 4,5 mm ) Bisa untuk WAHL", {"length": {4.5}}),
    ("PITA MOTIF IMPORT LEBAR 2,5CM PREMIUM (ECER PER METER)", {"length": {25}}),
    ("Baterai Battery Vinnic LR44 1.5V L1154F A76", {}),
    ("Hdd enclosure Orico 2.5 SATA USB 3.0 2020U3 - Casing hardisk external", {}),
    ("Taffware Digipounds Timbangan Dapur Mini Digital Scale 1kg 0.1g", {"weight": {1000, 0.1}}),
    ("Orico 2020U3 Casing SSD&HDD 2,5inch USB3.0 SATA", {"length": {2.5 * INCH}}),
    ("DAIA Deterjen Bubuk 1.8 kg", {"weight": {1800}}),
    ("JARUM PENTUL UKURAN 1,25 INCH / 1,5 INCH (3CM / 3,5CM) TAJAM",
     {"length": {1.25 * INCH, 1.5 * INCH, 30, 35}}),
    ("Powerbank Robot RT180 10.000 mAh Fast Charging", {"capacity": {10000}}),
    ("Powerbank Xiaomi 20,000mAh 18W", {"capacity": {20000}, "power": {18}}),
    ("Samsung Galaxy A51 6GB/128GB Garansi Resmi", {"memory": {6 * 1024, 128 * 1024}}),
    ("Flashdisk Sandisk Cruzer Blade 32 GB", {"memory": {32 * 1024}}),
    ("WD Hardisk Eksternal My Passport 1TB", {"memory": {1024 * 1024}}),
    ("Lampu LED Philips 10 Watt Putih", {"power": {10}}),
    ("Kabel Data Micro USB 1 meter Fast Charging", {"length": {1000}}),
    ("Minyak Goreng Bimoli 2 Liter", {"volume": {2000}}),
    ("Susu UHT Ultra Milk Coklat 1 L", {"volume": {1000}}),
    ("Tisu Basah Mitu Baby 50 lembar", {"pieces": {50}}),
    ("Telur Ayam Kampung 10 biji", {"pieces": {10}}),
    ("Kaos Polos Cotton Combed 30s Size XL", {"size": {6}}),
    ("Kemeja Pria Lengan Panjang XXL Slimfit", {"size": {7}}),
    ("Sepatu Sneakers Pria uk 40 Hitam", {"size": {140}}),
    ("Vitamin C IPI 500 mg Isi 45 Tablet", {"weight": {0.5}, "pieces": {45}}),
    ("Tepung Terigu Segitiga Biru 1.000 gram", {"weight": {1000}}),
    ('TV LED Coocaa 32" Full HD Digital', {"length": {32 * INCH}}),
    ("Charger 3 in 1 Fast Charging Type C", {}),
    ("Susu Bear Brand 189ml isi 6 kaleng", {"volume": {189}, "pieces": {6}}),
    ("Beras Pandan Wangi 5kg Premium", {"weight": {5000}}),
]


def test_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("title, expected", CASES, ids=[c[0][:40] for c in CASES])
def test_extraction(title, expected):
    found = extract_quantities(clean_titles(pl.Series([title])))
    got: dict[str, set] = {}
    for family, value in zip(found["family"], found["value"]):
        got.setdefault(family, set()).add(value)
    assert set(got) == set(expected)
    for family, values in expected.items():
        assert sorted(got[family]) == pytest.approx(sorted(values), rel=1e-3)


def test_extraction_is_vectorised_over_rows():
    titles = clean_titles(pl.Series([c[0] for c in CASES]))
    found = extract_quantities(titles)
    assert set(found["row"].to_list()) == {k for k, c in enumerate(CASES) if c[1]}


def test_pair_flags_on_sizes():
    from candidates import build_candidates
    from embedders import create_embedder, embed_catalog
    from features import PairContext, build_features

    postings = pl.DataFrame({"posting_id": ["a", "b", "c", "d"],
                             "title": ["Serum Wardah 30 ml", "Wardah serum 30ml ori",
                                       "Serum Wardah 100 ml", "Wardah lip cream merah"]})
    emb = embed_catalog(create_embedder("tfidf"), postings, None)
    found = build_candidates([emb], k=3)
    frame = build_features(PairContext(found.table, postings, {"tfidf": emb}, found.neighbours),
                           ["units"]).frame
    flag = {(a, b): c for a, b, c in frame.select("i", "j", "units_volume_conflict").iter_rows()}
    assert flag[(0, 1)] == 0          # same volume
    assert flag[(0, 2)] == 1          # 30 ml vs 100 ml
    assert np.isnan(flag[(0, 3)])     # d states no volume
    only = {(a, b): (x, y) for a, b, x, y in
            frame.select("i", "j", "numbers_only_i", "numbers_only_j").iter_rows()}
    assert only[(0, 2)] == (1, 1)
