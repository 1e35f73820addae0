//! Phrase rules that say which category a text names, for an electronics catalog. They file
//! rows that carry no category (the Chorus/Icecat import) and read the category a search query
//! names (its intent), so a shopper typing "laptop" sees notebooks before laptop accessories.
//!
//! The declared product type is read first, then the title. The first rule (in table order)
//! with a phrase in the text wins: rules run from specific to general ("notebook bag" before
//! "notebook"), which also keeps specifications later in a title ("… Notebook PC … 250 GB HDD")
//! from deciding. A compound names its last word, as English compounds do: when the winning
//! phrase is directly followed by another rule's phrase, that one decides instead ("Laptop
//! Cooler" is a cooler, "Notebook Battery" a battery). Words match whole, case-insensitively,
//! and a plural matches its singular ("laptops" → "laptop").

/// Phrase → category path rules, most specific first.
pub const CATEGORY_RULES: &[(&[&str], &[&str])] = &[
    (&["toner"], &["Printing", "Toner"]),
    (&["ink cartridge", "ink cartridges", "ink"], &["Printing", "Ink"]),
    (
        &[
            "drum",
            "imaging unit",
            "fuser",
            "maintenance kit",
            "transfer roller",
            "printer roller",
        ],
        &["Printing", "Printer Parts"],
    ),
    (
        &[
            "notebook case",
            "notebook bag",
            "laptop case",
            "laptop bag",
            "backpack",
            "roller",
            "sleeve",
            "carrying case",
            "bag",
        ],
        &["Accessories", "Bags & Cases"],
    ),
    (
        &["docking station", "dock station", "quickdock", "port replicator"],
        &["Accessories", "Docking Stations"],
    ),
    (&["kvm switch", "kvm switches", "kvm"], &["Networking", "KVM Switches"]),
    (
        &[
            "printer",
            "printers",
            "multifunctional",
            "multifunction",
            "all in one printer",
            "plotter",
        ],
        &["Printing", "Printers"],
    ),
    (&["scanner", "scanners"], &["Peripherals", "Scanners"]),
    (&["photo paper", "paper"], &["Printing", "Paper"]),
    (&["label", "labels", "tape"], &["Printing", "Labels & Tapes"]),
    // Input devices before computers: a "Laptop Internal KBD" or a "Desktop Keyboard" is a
    // keyboard, not the computer it fits.
    (&["mouse pad", "mousepad"], &["Peripherals", "Mouse Pads"]),
    (&["mouse", "mice"], &["Peripherals", "Mice"]),
    (&["keyboard", "keyboards", "kbd"], &["Peripherals", "Keyboards"]),
    (
        &[
            "notebook pc",
            "notebook",
            "notebooks",
            "laptop",
            "netbook",
            "chromebook",
        ],
        &["Computers", "Notebooks"],
    ),
    (&["tablet pc", "tablet", "tablets"], &["Computers", "Tablets"]),
    (&["server", "servers"], &["Computers", "Servers"]),
    (
        &["pc", "desktop", "workstation", "thin client", "all in one pc"],
        &["Computers", "Desktops"],
    ),
    (&["processor", "processors", "cpu"], &["Components", "Processors"]),
    (
        &["memory module", "memory modules", "ram", "dimm", "so dimm"],
        &["Components", "Memory"],
    ),
    (
        &["graphics card", "graphics adapter", "video card"],
        &["Components", "Graphics Cards"],
    ),
    (&["motherboard"], &["Components", "Motherboards"]),
    (
        &["power supply unit", "power supply", "psu"],
        &["Components", "Power Supplies"],
    ),
    (&["cooler", "fan", "heatsink"], &["Components", "Cooling"]),
    (
        &[
            "usb flash drive",
            "flash drive",
            "usb stick",
            "memory stick",
            "thumb drive",
            "pen drive",
            "pendrive",
        ],
        &["Storage", "Flash Drives"],
    ),
    (
        &[
            "memory card",
            "sd card",
            "microsd",
            "sdhc",
            "sdxc",
            "microsdhc",
            "microsdxc",
            "compactflash",
        ],
        &["Storage", "Memory Cards"],
    ),
    (
        &[
            "hard drive",
            "hard disk",
            "hdd",
            "ssd",
            "solid state drive",
            "internal hard drive",
            "external hard drive",
        ],
        &["Storage", "Drives"],
    ),
    (&["nas", "storage server", "disk array"], &["Storage", "NAS & Arrays"]),
    (
        &[
            "optical disc drive",
            "dvd",
            "blu ray",
            "cd drive",
            "cd rom",
            "cd writer",
            "cd burner",
        ],
        &["Storage", "Optical"],
    ),
    (&["ups", "uninterruptible power supply"], &["Power", "UPS"]),
    (
        &["surge protector", "power extension", "pdu", "power distribution unit"],
        &["Power", "Power Distribution"],
    ),
    (
        &[
            "battery",
            "batteries",
            "rechargeable battery",
            "power bank",
            "powerbank",
        ],
        &["Power", "Batteries"],
    ),
    (&["usb cable", "usb cables"], &["Cables", "USB Cables"]),
    (
        &[
            "hdmi cable",
            "displayport cable",
            "vga cable",
            "dvi cable",
            "video cable",
        ],
        &["Cables", "Video Cables"],
    ),
    (
        &[
            "networking cable",
            "network cable",
            "cat5e",
            "cat6",
            "cat6a",
            "patch cable",
        ],
        &["Cables", "Network Cables"],
    ),
    (
        &["fibre optic cable", "fiber optic cable", "fibre optic", "fiber optic"],
        &["Cables", "Fibre Optic Cables"],
    ),
    (&["power cable", "power cord"], &["Cables", "Power Cables"]),
    (
        &[
            "cable",
            "cables",
            "cable adapter",
            "cable interface gender adapter",
            "interface cards adapter",
            "interface adapter",
        ],
        &["Cables", "Cables & Adapters"],
    ),
    (
        &["power adapter", "ac adapter", "charger", "inverter"],
        &["Power", "Adapters & Chargers"],
    ),
    (&["switch", "switches"], &["Networking", "Switches"]),
    (&["router", "routers", "modem"], &["Networking", "Routers & Modems"]),
    (
        &["access point", "wlan access point", "wireless access point"],
        &["Networking", "Access Points"],
    ),
    (
        &[
            "network card",
            "network adapter",
            "transceiver",
            "media converter",
            "network interface",
        ],
        &["Networking", "Network Adapters"],
    ),
    (&["rack", "cabinet", "patch panel"], &["Networking", "Racks"]),
    (&["monitor", "monitors", "display"], &["Displays", "Monitors"]),
    (&["tv", "television"], &["Displays", "TVs"]),
    (
        &["projector", "projectors", "projection screen"],
        &["Displays", "Projectors"],
    ),
    (
        &["headphones", "headphone", "headset", "head set", "earphones", "earbuds"],
        &["Audio", "Headphones"],
    ),
    (
        &["speaker", "speakers", "soundbar", "loudspeaker"],
        &["Audio", "Speakers"],
    ),
    (&["microphone", "microphones"], &["Audio", "Microphones"]),
    // Platform names ("PlayStation 4", "Xbox One") also close the titles of games and
    // accessories, so only what a product is counts here.
    (&["video game", "video games"], &["Gaming", "Video Games"]),
    (&["game console", "game consoles"], &["Gaming", "Consoles"]),
    (
        &[
            "gamepad",
            "joystick",
            "game controller",
            "pro controller",
            "wireless controller",
        ],
        &["Gaming", "Controllers"],
    ),
    (&["webcam", "webcams"], &["Peripherals", "Webcams"]),
    (&["camera", "cameras", "camcorder"], &["Cameras", "Cameras"]),
    (&["lens", "lenses"], &["Cameras", "Lenses"]),
    (
        &["smartphone", "mobile phone", "phone", "telephone"],
        &["Phones", "Phones"],
    ),
    (
        &["mount", "bracket", "stand", "riser"],
        &["Accessories", "Mounts & Stands"],
    ),
    (
        &["case", "cover", "screen protector"],
        &["Accessories", "Cases & Protection"],
    ),
    (&["software", "license", "licence"], &["Software", "Software"]),
    (
        &["warranty", "service", "care pack"],
        &["Services", "Warranties & Services"],
    ),
    // Whatever else calls itself an accessory ("notebook accessory").
    (&["accessory", "accessories"], &["Accessories", "Other Accessories"]),
];

/// The category path (names from the root) that a product's declared type or its title names.
pub fn category_for(product_type: Option<&str>, title: &str) -> Option<&'static [&'static str]> {
    product_type
        .and_then(category_rule)
        .or_else(|| category_rule(title))
        .map(|rule| CATEGORY_RULES[rule].1)
}

/// The index of the [`CATEGORY_RULES`] entry that names what `text` is, if any.
fn category_rule(text: &str) -> Option<usize> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let phrase_at = |phrase: &str, at: usize| {
        let mut len = 0;
        for part in phrase.split(' ') {
            if !words.get(at + len).is_some_and(|w| same_word(w, part)) {
                return None;
            }
            len += 1;
        }
        Some(len)
    };
    // The longest phrase of any rule starting at `at`, as (rule, words).
    let longest_at = |at: usize| {
        (0..CATEGORY_RULES.len())
            .flat_map(|rule| {
                CATEGORY_RULES[rule]
                    .0
                    .iter()
                    .filter_map(move |p| Some((rule, phrase_at(p, at)?)))
            })
            .max_by_key(|&(rule, len)| (len, std::cmp::Reverse(rule)))
    };
    // The first rule (in priority order) with a phrase anywhere, at its first place.
    let (mut rule, mut at, mut len) = CATEGORY_RULES.iter().enumerate().find_map(|(rule, (phrases, _))| {
        (0..words.len()).find_map(|at| {
            let len = phrases.iter().filter_map(|p| phrase_at(p, at)).max()?;
            Some((rule, at, len))
        })
    })?;
    // A compound is named by its last word: "laptop cooler" is a cooler.
    while let Some((next, next_len)) = longest_at(at + len) {
        (rule, at, len) = (next, at + len, next_len);
    }
    Some(rule)
}

/// Whether a text word is a rule word or its plural (not for two-letter words: "pcs" in
/// "1 pc(s)" counts pieces, it is no computer).
fn same_word(word: &str, rule_word: &str) -> bool {
    word == rule_word
        || (rule_word.len() > 2
            && (word.strip_suffix('s') == Some(rule_word) || word.strip_suffix("es") == Some(rule_word)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icecat_titles_map_to_categories() {
        let cases = [
            (None, "Xerox 006R90321 toner cartridge Original Black 6 pc(s)", "Toner"),
            (Some("Notebook"), "HP Pavilion dv7-1211ea Notebook Silver", "Notebooks"),
            (None, "Targus 15.6\" notebook bag Black", "Bags & Cases"),
            (Some("1"), "Sennheiser HD 202 headphones", "Headphones"),
            (None, "StarTech.com 6 ft Cat6 patch cable", "Network Cables"),
            (
                None,
                "Intel Core i5-750 processor 2.66 GHz 8 MB Smart Cache Box",
                "Processors",
            ),
            (None, "Something entirely unknown", "Other"),
            // A compound is named by its last word.
            (None, "StarTech.com Black USB Powered Laptop Cooler", "Cooling"),
            (None, "HP NS09 Notebook Battery", "Batteries"),
            (None, "Integral IN2V2GNWNEX 2GB LAPTOP RAM MODULE DDR2 667MHZ", "Memory"),
            (None, "Eaton 9130 uninterruptible power supply (UPS) 3000 VA", "UPS"),
            // Longer phrases of a rule hold together; specifications later in the title do not decide.
            (
                None,
                "HP ProBook 4320s Notebook PC Black 33.8 cm (13.3\") 320 GB HDD",
                "Notebooks",
            ),
            (None, "StarTech.com 16 Port Rackmount USB KVM Switch", "KVM Switches"),
            // Plurals match their singular, but "pc(s)" counts pieces.
            (None, "laptops", "Notebooks"),
            (None, "Netgear ProSafe 16 Port Gigabit Switches", "Switches"),
            (None, "Lexmark 123 label 3 pcs", "Labels & Tapes"),
            (None, "Kensington Contour 17'' Laptop Roller- Black", "Bags & Cases"),
            (
                None,
                "Lexmark 10E0045 printer roller Printer transfer roller",
                "Printer Parts",
            ),
            (None, "Targus ASF201WUSZ notebook accessory", "Other Accessories"),
            (None, "V7 8GB Class 10 Micro SDHC Card + Adapter", "Memory Cards"),
            (None, "HP 48X PATA CD-ROM Drive optical disc drive", "Optical"),
            (
                None,
                "Origin Storage Laptop Internal US INTL KBD Inspiron 1545",
                "Keyboards",
            ),
            (None, "Kensington Desktop Comfort Keyboard Drawer", "Keyboards"),
            (None, "HP Notebook QuickDock", "Docking Stations"),
            (None, "Sony Dreams, PS4 video game PlayStation 4 Basic", "Video Games"),
            (None, "Logitech X52 Flight Control System Joystick", "Controllers"),
            (
                None,
                "Sony PlayStation Portable Slim & Lite portable game console Blue",
                "Consoles",
            ),
            (None, "external cd drive", "Optical"),
        ];
        for (product_type, title, leaf) in cases {
            let path = category_for(product_type, title).unwrap_or(&["Other"]);
            assert_eq!(path.last().copied(), Some(leaf), "{title}");
        }
    }
}
