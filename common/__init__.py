"""What every Pesée program shares and no layer owns: i18n, settings, units, systemd, exits."""
