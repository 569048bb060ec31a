// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

interface ITokenReceiver {
    function onTokenReceived(address from, uint256 amount) external;
}

/// @notice TEST ONLY. An ERC-20 that calls the receiver back after a transfer (as ERC-777/ERC-1363 hooks do):
///         the lab's RewardToken has no such hook, this one exists to give an attacker a way back in.
contract HookToken is ERC20 {
    address public hooked;

    constructor(uint256 supply) ERC20("Hook Token", "HOOK") {
        _mint(msg.sender, supply);
    }

    function setHooked(address receiver) external {
        hooked = receiver;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (to == hooked && from != address(0)) ITokenReceiver(to).onTokenReceived(from, value);
    }
}
