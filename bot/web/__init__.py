"""The web cockpit (驾驶舱, README "Cockpit"): pages served by `qingshui run` beside the bot."""
